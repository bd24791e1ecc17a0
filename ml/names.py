"""The registered models' names: the one place they are spelled.

Its own module with no imports, so the serving API and the CLI can name a model without
loading pandas or MLflow.
"""

RECOMMENDER = "pulsemart-recommender"
PROPENSITY = "pulsemart-propensity"
MODELS = (RECOMMENDER, PROPENSITY)
# The built-in challenger of an online experiment: no model rows, the trending list for everyone.
POPULARITY = "popularity"
