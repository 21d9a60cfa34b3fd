"""What the tests and the benchmarks use to run and measure the real service and its neighbours on this machine: free
loopback ports, polling until ready, the service under gunicorn, a loopback OTLP receiver, the image run hardened
(`docker run` flags and all), a process tree's CPU time and memory, and generated prose.

A top-level package beside ``service/``, ``tests/`` and ``bench/``: both tests and benchmarks depend on it and neither
on the other, and ``service/`` — what the image ships — carries none of it.
"""
