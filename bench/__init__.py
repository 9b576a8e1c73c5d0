"""The benchmark harness: the operator against the bare-client limit (``python -m bench``).

One module per job: ``cluster`` (dev cluster, identities, namespaces), ``load`` (apps, edits
and noise, at once or at a rate), ``watch`` (what the harness sees, when), ``calls`` (API
calls per client from the audit log), ``process`` (the operator process, its CPU and memory,
caught-up), ``baseline`` (the bare client), ``profile`` (py-spy), ``phases`` (one run at one
size), ``report`` (result.json, summary.md, the chart) and ``run`` (the command line).
"""
