"""The command line's flags, and the combinations that make no sense refused in one line (status 2)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["parse"]


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags; a usage error exits with status 2 and one line, as argparse does."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.skip_done is not None and args.json:
        parser.error("--skip-done adds JSON lines to its file; leave out --json")
    if args.write_alt_text and args.ask is not None:
        parser.error("--write-alt-text writes descriptions; an answer to --ask isn't alt text")
    if args.write_alt_text and args.read and not args.describe:
        parser.error("--write-alt-text writes descriptions: use --describe --read")
    if args.overwrite and not args.write_alt_text:
        parser.error("--overwrite goes with --write-alt-text: it replaces alt text already in a picture")
    if args.detailed and args.ask is not None:
        parser.error("--detailed gives detailed descriptions, not answers to --ask")
    return args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m captioning",
        description="Describe pictures in English and other languages with BLIP-2 and MarianMT.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="picture files, or folders of them")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON array, one object per file")
    output.add_argument(
        "--jsonl", action="store_true", help="print one JSON object a line, as each picture is done"
    )
    _library_flags(parser)
    _model_flags(parser)
    parser.add_argument(
        "--ask", metavar="QUESTION", help="answer this question about each picture instead of describing it"
    )
    parser.add_argument("--read", action="store_true", help="read out the text in each picture (OCR_MODEL)")
    parser.add_argument("--describe", action="store_true", help="with --read: describe each picture too")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log the models, device, dtype, and the time of each step",
    )
    return parser


def _library_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-done",
        metavar="FILE.jsonl",
        type=Path,
        help="skip the pictures in FILE (same path, same content) and add this run's JSON lines to it",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="a progress bar on stderr (default: on a terminal)",
    )
    parser.add_argument(
        "--write-alt-text",
        action="store_true",
        help="write each description into the picture as IPTC Alt Text (XMP), every language",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="with --write-alt-text: replace alt text already there"
    )
    parser.add_argument(
        "--detailed",
        action="store_true",
        help="a detailed description too (with --write-alt-text: as IPTC Extended Description)",
    )
    parser.add_argument(
        "--keep-mtime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --write-alt-text: keep each file's modification time (default: kept)",
    )


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--caption-model", help="BLIP-2 hub id or folder (env CAPTION_MODEL)")
    parser.add_argument(
        "--translation-model", help="Marian en->es hub id or folder (env TRANSLATION_MODEL; the es entry)"
    )
    parser.add_argument(
        "--lang",
        metavar="CODES",
        help="translations to give, among the configured ones, e.g. es,fr (default: all)",
    )
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (env DEVICE)")
    parser.add_argument("--dtype", help="auto, float16, bfloat16 or float32 (env DTYPE)")
    parser.add_argument(
        "--quantize", choices=["none", "int8"], help="int8: faster on the CPU, in less memory (env QUANTIZE)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, help="caption length limit (env CAPTION_MAX_NEW_TOKENS)"
    )
    parser.add_argument("--num-beams", type=int, help="caption beams (env CAPTION_NUM_BEAMS)")
    parser.add_argument("--batch-size", type=int, help="pictures per forward pass (env MAX_BATCH_SIZE)")
