"""The resolution levels of the small convolutional autoencoders trained here."""


def level_channels(stride: int, width: int) -> tuple[int, ...]:
    """Channels per resolution level: log2(stride) + 1 levels, doubling from 32 up to ``width``."""
    levels = stride.bit_length()
    if stride < 1 or 2 ** (levels - 1) != stride:
        raise ValueError(f"tokenizer stride {stride} must be a power of two")
    return tuple(min(width, 32 * 2**i) for i in range(levels))
