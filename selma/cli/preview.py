"""`selma preview`: a contact sheet (thumbnails with their captions) of any dataset folder."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset_dir", metavar="DATASET_DIR", help="a dataset folder (images + metadata.jsonl)")
    parser.add_argument("-o", "--output", help="PNG to write (default: DATASET_DIR_contact_sheet.png beside it)")
    parser.add_argument("--max", type=int, default=16, help="at most this many images, evenly spaced (default 16)")
    parser.add_argument("--thumb-size", type=int, default=160, help="thumbnail side in pixels (default 160)")


def run(args: argparse.Namespace) -> int:
    from ..datasets.contact_sheet import dataset_contact_sheet, default_sheet_path, save_sheet

    sheet = dataset_contact_sheet(args.dataset_dir, max_images=args.max, thumb_size=args.thumb_size)
    path = save_sheet(sheet, args.output or default_sheet_path(args.dataset_dir))
    print(path)
    return 0
