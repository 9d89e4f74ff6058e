"""rollcall's command line: the ``facebank`` commands (``cli.facebank``), with bulk import
(``cli.importing``) and export (``cli.exporting``) of a folder of photos (``cli.folders``).

They run in the API's app, as ``flask --app webapi facebank ...`` or ``python -m webapi.cli ...``;
the HTTP package only registers them.
"""
