"""`polyseek serve`: the HTTP API and web UI over one index, with uvicorn."""

from __future__ import annotations

import os
import sys

import click


@click.command("serve")
@click.option("--index", "index_path", default=lambda: os.environ.get("POLYSEEK_INDEX", ".polyseek"),
              show_default=".polyseek", type=click.Path(file_okay=False), help="Index folder (or $POLYSEEK_INDEX).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback requires a token.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", default=None, help="Require 'Authorization: Bearer TOKEN' (default: $POLYSEEK_TOKEN).")
@click.option("--allow-root", "allow_roots", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Folder whose files POST /index may add by path (repeatable).")
@click.option("--cors-origin", "cors_origins", multiple=True, help="Allow browser calls from this origin (repeatable).")
@click.option("--allow-host", "allowed_hosts", multiple=True,
              help="Also answer to this Host name, e.g. behind a reverse proxy (repeatable; loopback names and the "
                   "bind address always work; others are refused against DNS rebinding).")
@click.option("--max-upload-mb", default=64, show_default=True, type=click.IntRange(1, 100_000),
              help="Largest request body (uploads) in MB.")
@click.option("--max-image-pixels", default=40_000_000, show_default=True, type=click.IntRange(1),
              help="Largest query image, in pixels.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve_command(index_path, host, port, token, allow_roots, cors_origins, allowed_hosts, max_upload_mb,
                  max_image_pixels, log_level):
    """Serve the search API and web UI for an index.

    \b
    Examples:
      polyseek serve --index ~/.polyseek                 # http://127.0.0.1:8000
      POLYSEEK_TOKEN=s3cret polyseek serve --host 0.0.0.0
      polyseek serve --allow-root ~/Documents            # POST /index may add files from there
    """
    from polyseek.errors import PolyseekError
    from polyseek.serve.api import ServeConfig, create_app

    try:
        config = ServeConfig.from_env(index=index_path, host=host, port=port, token=token, allow_roots=allow_roots,
                                      cors_origins=cors_origins, allowed_hosts=allowed_hosts,
                                      max_upload_bytes=max_upload_mb * 1024 * 1024,
                                      max_image_pixels=max_image_pixels)
        config.check_exposure()
        app = create_app(config)
    except PolyseekError as e:
        click.echo(click.style("error: ", fg="red", bold=True) + str(e), err=True)
        sys.exit(1)
    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Polyseek serving {config.index} at http://{shown}:{port}/  (API docs: /docs"
               + (", token required" if config.token else "") + ")", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False, server_header=False)
