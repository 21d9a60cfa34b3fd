"""Model serving: open a model file safely, check requests against it, predict.

Nothing here imports Flask. Every module but this one imports numpy (and some scikit-learn or skops), so the app
imports this package only when a model is configured (``FLASK_SVC_MODEL_PATH``): the default image has none of them.
"""
