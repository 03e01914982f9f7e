"""``salova serve``: the HTTP API, OpenAI-compatible chat and the web page."""

from __future__ import annotations

from pathlib import Path

import click

from salova.cli.infer import AUX_TEXT_OPTION, CACHE_DIR_OPTION, MODEL_OPTION, THREADS_OPTION
from salova.infer import AssistantConfig
from salova.serve.config import DEFAULT_HOST, DEFAULT_PORT, ServerSettings

__all__ = ["serve", "API_KEY_ENV"]

API_KEY_ENV = "SALOVA_API_KEY"
"""Environment variable that sets the API key (keeps it out of the process list)."""


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@MODEL_OPTION
@AUX_TEXT_OPTION
@CACHE_DIR_OPTION
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Uploaded videos live here [default: server/ in the cache folder].",
)
@click.option(
    "--api-key", envvar=API_KEY_ENV, default=None, help=f"Require this key on every /v1 request [env: {API_KEY_ENV}]."
)
@click.option(
    "--max-upload-mb",
    type=click.IntRange(min=1),
    default=ServerSettings.max_upload_bytes >> 20,
    show_default=True,
    help="Largest upload.",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=AssistantConfig.top_k,
    show_default=True,
    help="Segments read per answer unless a request says otherwise.",
)
@THREADS_OPTION
@click.option(
    "--index-threads",
    type=click.IntRange(min=1),
    default=ServerSettings.index_threads,
    show_default=True,
    help="Threads of the indexing process.",
)
def serve(host, port, model, aux_text, cache_dir, data_dir, api_key, max_upload_mb, top_k, threads, index_threads):
    """Serve the API (docs at /docs) and the web page (at /) until interrupted."""
    import torch
    import uvicorn

    from salova.infer import default_cache_dir
    from salova.serve import create_app

    if threads:
        torch.set_num_threads(threads)
    settings = ServerSettings(
        data_dir=data_dir or (cache_dir or default_cache_dir()) / "server",
        model=model,
        assistant=AssistantConfig(aux_text=aux_text, cache_dir=cache_dir, top_k=top_k),
        api_key=api_key,
        max_upload_bytes=max_upload_mb << 20,
        index_threads=index_threads,
    )
    app = create_app(settings)
    click.echo(f"salova: serving {app.state.service.assistant.pipeline.describe()} on http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
