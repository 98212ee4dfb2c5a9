"""A trained model at work: rebuilt for inference (`inference`: the pure steps of a prediction,
shared by the API's predict path and the worker's predict jobs), what a prediction takes and
answers (`schemas`), and the model exported for runtimes without this service (`export`)."""
