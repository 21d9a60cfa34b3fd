"""Batch analysis: an upload kept on a shared volume and analysed by separate stage processes (tokenize, then count),
coordinated by the service through a runner (local subprocesses or Kubernetes Jobs).

Plain Python, no web framework: ``states`` (the job's life), ``formats`` (the files stages exchange), ``store``
(where jobs live), ``signing`` (callback authentication), ``stages`` and ``__main__`` (the stage processes),
``runner``/``local``/``kube`` (who runs them), ``coordinator`` (what moves a job on).
"""
