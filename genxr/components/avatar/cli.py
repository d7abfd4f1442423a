"""``genxr avatar dataset``, ``genxr train avatar`` and ``genxr eval avatar``.

torch and the simulator are imported inside the commands so that ``genxr --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

avatar_app = typer.Typer(help="Conversational avatar: data set generation.", no_args_is_help=True)


@avatar_app.command("dataset")
def dataset(
    out: Annotated[Path, typer.Option(help="directory for the shards and manifest.json")],
    conversations: Annotated[int, typer.Option(min=1, help="number of conversations")] = 64,
    seconds: Annotated[float, typer.Option(min=1.0, help="length of each conversation in seconds")] = 60.0,
    seed: Annotated[int, typer.Option(help="data set seed (same seed, same bytes)")] = 0,
    shard_size: Annotated[int, typer.Option(min=1, help="conversations per safetensors shard")] = 16,
) -> None:
    """Simulate dyadic conversations (audio of both speakers, user trajectory, agent motion)."""
    from tqdm import tqdm

    from genxr.components.sim.conversation.dataset import write_dataset

    with tqdm(total=conversations, unit="conv", desc="simulating") as bar:
        manifest = write_dataset(out, conversations, seconds, seed, shard_size,
                                 progress=lambda done: bar.update(done - bar.n))
    typer.echo(f"wrote {manifest['conversations']} conversations in {len(manifest['shards'])} shards to {out}/", err=True)
