"""Parameter counts of the full-size backbones, built with random weights.

For each backbone: our 4-level pyramid (`build_pyramid`), the keras-hub
backbone it wraps, the count keras-hub's preset metadata gives, the UPerNet
decoder (512 channels, 150 classes as ADE20K) on that pyramid, and the paper's
number where it gives one (Swin-L 197M, ResNet-50 25.6M — both with their
ImageNet classification heads).  Prints a Markdown table.

    KERAS_BACKEND=tensorflow python benchmarks/param_counts.py [names...]

Slow (minutes for Swin-L on a CPU) and ~4 GB of memory; not part of the tests.
"""

import argparse
import gc
import time

import keras

from keras_sard.models import BACKBONES, PRESETS, build_backbone, build_pyramid, upernet_decoder

PAPER = {"swin_large": 197e6, "resnet50": 25.6e6}
DEFAULT = ("swin_tiny", "swin_small", "swin_base", "swin_large", "resnet50", "resnet101", "mit_b0")


def preset_params(name):
    import keras_hub

    class_name = BACKBONES[name][0]
    presets = getattr(keras_hub.models, class_name).presets
    preset = PRESETS[name][0]
    return preset, presets.get(preset, {}).get("metadata", {}).get("params")


def decoder_params(channels, size, num_classes=150, decoder_channels=512):
    inputs = [keras.Input((size // s, size // s, c)) for s, c in zip((4, 8, 16, 32), channels)]
    return keras.Model(inputs, upernet_decoder(inputs, num_classes, channels=decoder_channels)).count_params()


def millions(value):
    return "—" if value is None else f"{value / 1e6:.2f}M"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="name", help=f"of {sorted(BACKBONES)}; default {list(DEFAULT)}")
    parser.add_argument("--image-size", type=int, default=512)
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BACKBONES))
    if unknown:
        parser.error(f"unknown backbones {unknown}; known: {sorted(BACKBONES)}")
    print(f"backend {keras.backend.backend()}, image_size {args.image_size}, random weights\n")
    print("| backbone | our pyramid | keras-hub backbone | keras-hub preset (metadata) | UPerNet-512 decoder | pyramid + decoder | paper | build s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.names or DEFAULT:
        start = time.time()
        backbone = build_backbone(name, args.image_size)
        pyramid = build_pyramid(backbone, name=name)
        channels = [int(t.shape[-1]) for t in pyramid.outputs]
        ours, hub = pyramid.count_params(), backbone.count_params()
        preset, metadata = preset_params(name)
        decoder = decoder_params(channels, args.image_size)
        seconds = time.time() - start
        print(
            f"| {name} | {millions(ours)} | {millions(hub)} | {millions(metadata)} ({preset}) | "
            f"{millions(decoder)} | {millions(ours + decoder)} | {millions(PAPER.get(name))} | {seconds:.0f} |",
            flush=True,
        )
        del backbone, pyramid
        keras.backend.clear_session()
        gc.collect()


if __name__ == "__main__":
    main()
