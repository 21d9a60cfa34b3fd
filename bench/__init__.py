"""flask-svc benchmarks (issue 7): `make bench` runs `python -m bench.run`; `python -m bench.wordcount` alone."""
