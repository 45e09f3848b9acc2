"""Entity recognition for raw text: a BIO token tagger on the DocuNet encoder family.

* ``tagging``   — torch-free: words, BIO labels, windows, window inputs, logit merge, decoding.
* ``recognize`` — torch-free: ``Recognizer`` (tagging → grouping → entities) over any tag function
  (an ONNX Runtime session in a MODEL_DIR, or the PyTorch tagger).
* ``model``     — the PyTorch tagger (encoder + linear layer over the last hidden states).
* ``train``     — ``train_ner``: training, dev selection on mention F1, resume.
* ``scoring``   — end-to-end scorers (mentions, concepts, relations, clusters).
"""
