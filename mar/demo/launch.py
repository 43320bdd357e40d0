"""A web page to sample a MAR checkpoint (diffusion or categorical head): pick classes by name, set K, the head's
sampler and steps, temperature, guidance and seed; see the grid, the time taken and the tokens being unmasked step
by step. Needs the demo extra: pip install -e ".[demo]".

Examples:
    mar demo --checkpoint runs/default
    python -m mar.demo --checkpoint runs/default/checkpoints/step-00002028 --port 8000 --device cpu
"""

import socket

from mar.cli.common import add_checkpoint_argument, pick_device
from mar.cli.options import Parser, fail, integer, text
from mar.interop.hub import open_checkpoint


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    add_checkpoint_argument(parser, required=False)
    parser.add_argument("--no-ema", action="store_true", help="sample with the trained weights instead of their EMA")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--host", type=text, default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=integer(1, 65535), default=7860, help="port to serve on")
    parser.add_argument("--max-images", type=integer(1, 1024), default=64, help="most images one click may ask for")
    return parser


def check_port(host: str, port: int) -> None:
    """The address can be served on; one-line error otherwise (before the checkpoint is loaded)."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            fail(
                f"--host {host} --port {port} cannot be served on ({error.strerror or error}); pass another --port "
                "(or a --host of this machine)"
            )


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.checkpoint is None:
        fail(
            "no --checkpoint given: train one with `python train.py` (it writes runs/default), then run "
            "`mar demo --checkpoint runs/default`"
        )
    try:
        from mar.demo.app import build_app, serve
    except ModuleNotFoundError as error:
        if error.name != "gradio":
            raise
        fail('the demo needs gradio, which is not installed; run pip install -e ".[demo]"')
    check_port(args.host, args.port)
    device = pick_device(args.device)
    try:
        checkpoint = open_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    app = build_app(checkpoint, args.checkpoint, device, args.max_images, use_ema=not args.no_ema)
    print(f"serving {args.checkpoint} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    serve(app, args.host, args.port)
