"""The PythonApp API: types, rules and their CEL twins, validation, the generated CRD.

Nothing here does I/O or knows about the cluster: ``models`` (strict pydantic types and
cross-field rules), ``image`` (the OCI reference policy), ``validation`` (documents -> models
or field-path problems), ``crd`` (the CRD generated from the models). The renderer, the
controller and the CLI build on it; it builds on nothing of theirs.
"""
