"""pythonapp-operator: run Python services on Kubernetes, hardened by default."""

__version__ = "0.1.0"

GROUP = "pythonapp.dev"
VERSION = "v1alpha1"
KIND = "PythonApp"
PLURAL = "pythonapps"
