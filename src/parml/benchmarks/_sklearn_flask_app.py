"""The common tutorial setup that `parml bench serving` compares against: a scikit-learn model
pickled to disk, unpickled by a minimal Flask app, run by gunicorn (MODEL_PKL names the file)."""
import os
import pickle

import numpy as np
from flask import Flask, jsonify, request

with open(os.environ["MODEL_PKL"], "rb") as f:
    model = pickle.load(f)  # the anchor's way: trusted file only

app = Flask(__name__)


@app.post("/predict")
def predict():
    X = np.asarray(request.get_json()["instances"], dtype=float)
    return jsonify(predictions=model.predict(X).tolist())
