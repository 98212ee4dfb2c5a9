"""Inside a trained net, as the course shows it: what each conv/pool stage sees of one input
(`activations.feature_maps`), the first layer's kernels (`activations.first_filters`), which
pixels the answer depends on (`activations.saliency`: input gradients and Grad-CAM), and what the
model gets wrong on its test split (`evaluation`: confusion matrix and top losses).

Pure functions of a loaded model and raw samples, chosen by `samples`; the answers are
`schemas`, the pictures `charts`. Nothing here knows HTTP or the database; the API runs all of it
in its CPU pool.
"""
