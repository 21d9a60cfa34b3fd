"""The apps flask-svc is compared against; each serves /livez, /readyz and POST /api/v1/analyze."""
