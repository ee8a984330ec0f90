"""Star clusters: MCI selection, classification and the cluster stage.

Cluster-candidate classes: human classes from a user table and a CNN on postage stamps.

Classes follow Lee et al. (2022) Sect. 4.5 (LEGUS scheme): 1 symmetric compact cluster,
2 asymmetric/elongated compact cluster, 3 compact association (>= 4 peaks within 5 px), 4 not a
cluster (star, star pair, artefact, background galaxy).

* :func:`import_human_classes` fills ``PHANGS_CLUSTER_CLASS_HUMAN`` from a user CSV/ECSV, by
  candidate id or by RA/Dec cross-match.
* :func:`cut_stamps` cuts normalised five-band stamps around candidates, and :func:`classify` runs
  an ONNX model on them with onnxruntime (CPU), giving ``PHANGS_CLUSTER_CLASS_ML`` and
  ``PHANGS_CLUSTER_CLASS_ML_QUAL`` (softmax probability of the chosen class).

The shipped model ``data/cluster_classifier.onnx`` is a small CNN trained on simulated stamps by
``scripts/train_classifier.py``; its provenance and held-out accuracies are in the sidecar
``data/cluster_classifier.json``.  Stamps are normalised by
:func:`phangs_products.pipeline.clusters.classify.normalise_stamps`, the function the training used.
"""
