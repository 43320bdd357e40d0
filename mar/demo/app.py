"""The Gradio page: classes and sampling controls on the left; the grid, the time taken and the unmasking on the
right. A value or combination the sampler cannot take ends in a message on the page, in the command line's words."""

import gradio as gr
import torch

from diffloss.samplers import FIRST_SOLVER_TIMESTEP
from mar.cli.common import preset_text, sampling_options
from mar.demo.generation import MAX_FRAMES, generate
from mar.demo.quality_note import quality_note
from mar.demo.settings import (
    SettingsError,
    checked_classes,
    checked_count,
    checked_sampling,
    checked_seed,
    default_sampling,
    preset_backbone_fields,
    preset_controls,
    sampling_choices,
)
from mar.sampling.config import PRESETS
from mar.train.checkpoint import Checkpoint

# System fonts: the default theme fetches its font from Google, which an offline machine cannot reach.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])

UNMASKING = f"""**How MAR fills in an image.** Each picture is the grid after one autoregressive step (up to {MAX_FRAMES}
pictures, evenly spaced when K is larger): the tokens drawn so far are decoded by the tokenizer and each token still
masked is painted gray. Every image follows its own random order; the cosine schedule draws few tokens in the first
steps and more in the last ones."""


def model_kind(config) -> str:
    if config.attention == "causal":
        return f"causal autoregression in {config.order} order, one token per step"
    return "MAR (bidirectional, random order)"


def describe(checkpoint: Checkpoint, source: str, use_ema: bool, device: torch.device) -> str:
    config = checkpoint.model.config
    weights = "EMA weights" if use_ema and checkpoint.ema is not None else "trained weights"
    return (
        f"# MAR demo\n`{source}`: step {checkpoint.step}, {model_kind(config)}, {config.head_kind} head, "
        f"{len(checkpoint.classes)} classes, "
        f"{checkpoint.image_size} px images of {config.seq_len} tokens ({config.grid_size} x {config.grid_size}), "
        f"{weights}, on {device}."
    )


def build_app(
    checkpoint: Checkpoint, source: str, device: torch.device, max_images: int = 64, use_ema: bool = True
) -> gr.Blocks:
    """The page for one loaded checkpoint; its generate button is also the API endpoint ``/generate``."""
    model = checkpoint.sampling_model if use_ema else checkpoint.model
    config, names, defaults = model.config, checkpoint.classes, default_sampling()
    diffusion, causal = config.head_kind == "diffusion", config.attention == "causal"
    train_timesteps = model.head.config.num_train_timesteps if diffusion else 0
    zoom = max(1, 128 // checkpoint.image_size)  # small images are shown at 128 px or more
    head_note = (
        f"ddpm: 1 to {train_timesteps - 1} steps; ddim and dpm++: 1 to {FIRST_SOLVER_TIMESTEP}, and 10 to 25 are "
        "usually enough"
        if diffusion
        else "the categorical head draws from a softmax: no sampler and no head steps"
    )

    def run(chosen, per_class, num_iter, head_sampler, diffusion_steps, temperature, cfg, cfg_schedule, preset, seed):
        try:
            class_ids = checked_classes(chosen, names)
            per_class = checked_count(len(class_ids), per_class, max_images)
            seed = checked_seed(seed)
            sampling = checked_sampling(
                dict(
                    num_iter=num_iter,
                    head_sampler=head_sampler,
                    diffusion_steps=diffusion_steps,
                    temperature=temperature,
                    cfg=cfg,
                    cfg_schedule=cfg_schedule,
                    **preset_backbone_fields(preset),
                ),
                config.seq_len,
                config.head_kind,
                train_timesteps,
            )
        except SettingsError as error:
            raise gr.Error(str(error), print_exception=False) from None  # the user's input, not a fault of the server
        try:
            result = generate(
                model, checkpoint.tokenizer, class_ids, [names[k] for k in class_ids], per_class, sampling, seed, zoom
            )
        except torch.OutOfMemoryError:
            raise gr.Error(f"{device} ran out of memory for {len(class_ids) * per_class} images; pick fewer") from None
        status = (
            f"{result.count} images in {result.seconds:.2f} s ({result.images_per_second:.2f} images/s) on {device}, "
            + (f"one token per step ({config.seq_len} steps), " if causal else f"K={sampling.num_iter}, ")
            + (
                f"{sampling.head_sampler} head with {sampling.diffusion_steps} steps, "
                if diffusion
                else "categorical head, "
            )
            + f"cfg {sampling.cfg:g} ({sampling.cfg_schedule}), temperature {sampling.temperature:g}, "
            + f"{preset} preset, seed {seed}"
        )
        return result.grid, status, result.frames

    with gr.Blocks(title="MAR demo", analytics_enabled=False) as app:  # offline: no usage reports, no version check
        gr.Markdown(describe(checkpoint, source, use_ema, device))
        gr.Markdown(quality_note(source), elem_id="quality")
        with gr.Row():
            with gr.Column(scale=1):
                controls = [
                    gr.Dropdown(
                        names,
                        value=names[: min(4, len(names))],
                        multiselect=True,
                        label="classes (one row each)",
                        elem_id="classes",
                    ),
                    gr.Slider(
                        1,
                        max_images,
                        value=min(2, max_images),
                        step=1,
                        precision=0,
                        label="images per class (--per-class)",
                        elem_id="per-class",
                    ),
                    gr.Slider(
                        1,
                        config.seq_len,
                        value=config.seq_len if causal else min(defaults.num_iter, config.seq_len),
                        step=1,
                        precision=0,
                        interactive=not causal,
                        label="K: autoregressive steps (--num-iter)",
                        info=f"a causal model draws one token per step: {config.seq_len}"
                        if causal
                        else f"1 to {config.seq_len}, the tokens per image",
                        elem_id="num-iter",
                    ),
                    gr.Radio(
                        sampling_choices("head_sampler"),
                        value=defaults.head_sampler,
                        interactive=diffusion,
                        label="head sampler (--head-sampler)",
                        info=head_note,
                        elem_id="head-sampler",
                    ),
                    gr.Slider(
                        1,
                        max(train_timesteps - 1, defaults.diffusion_steps),
                        value=defaults.diffusion_steps,
                        step=1,
                        precision=0,
                        interactive=diffusion,
                        label="head steps per token (--diffusion-steps)",
                        elem_id="diffusion-steps",
                    ),
                    gr.Slider(
                        0.0,
                        3.0,
                        value=sampling_options(defaults, checkpoint.sampling).temperature,  # the run's choice
                        step=0.05,
                        label="temperature (--temperature)",
                        info="ddpm: noise per step; ddim, dpm++: starting noise; categorical: softmax temperature",
                        elem_id="temperature",
                    ),
                    gr.Slider(
                        0.0,
                        10.0,
                        value=sampling_options(defaults, checkpoint.sampling).cfg,  # the run's chosen scale
                        step=0.1,
                        label="CFG scale (--cfg)",
                        info="1 = no guidance",
                        elem_id="cfg",
                    ),
                    gr.Radio(
                        sampling_choices("cfg_schedule"),
                        value=defaults.cfg_schedule,
                        label="CFG schedule (--cfg-schedule)",
                        info="linear rises from 1 to the scale as tokens are drawn",
                        elem_id="cfg-schedule",
                    ),
                    gr.Radio(
                        list(PRESETS),
                        value="exact",
                        label="preset (--fast)",
                        info=f"fast: {preset_text('fast')}; picking one sets K and the head controls above",
                        elem_id="preset",
                    ),
                    gr.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label="seed (--seed)", elem_id="seed"),
                ]
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=2):
                grid = gr.Image(label="samples", type="pil", format="png", interactive=False, elem_id="grid")
                status = gr.Textbox(label="time taken", interactive=False, elem_id="status")
                gr.Markdown(UNMASKING)
                frames = gr.Gallery(
                    label="unmasking, step by step", columns=4, object_fit="contain", format="png", elem_id="frames"
                )

        def preset_chosen(name: str) -> tuple[int, str, int]:
            num_iter, head_sampler, diffusion_steps = preset_controls(name)
            return (config.seq_len if causal else min(num_iter, config.seq_len)), head_sampler, diffusion_steps

        controls[-2].change(preset_chosen, inputs=controls[-2], outputs=controls[2:5], api_name=False)
        button.click(run, inputs=controls, outputs=[grid, status, frames], api_name="generate")
    return app


def serve(app: gr.Blocks, host: str, port: int, block: bool = True) -> str:
    """Serves the page at http://host:port and returns its address; without ``block`` it returns at once and the
    server runs in a thread until ``app.close()``."""
    app.launch(
        server_name=host, server_port=port, theme=THEME, ssr_mode=False, prevent_thread_lock=not block, quiet=not block
    )
    return f"http://{host}:{port}/"
