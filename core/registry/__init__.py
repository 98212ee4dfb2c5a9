"""Models, as the service keeps and shows them: the architectures a job may build (their options,
their layer tables) and the trained models (rows, aliases, uploaded state_dicts, parameters).

`queries` reads and writes the rows, `schemas` is what the API takes and answers, `weights` reads
an uploaded state_dict safely, `parameters` shows a trained net's tensors, `model_options` bounds
an architecture's options, `architectures` is GET /v1/architectures' view of the zoo.
"""
