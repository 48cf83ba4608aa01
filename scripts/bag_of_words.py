#!/usr/bin/python3
"""A bag-of-words baseline: TF-IDF over word 1-2-grams and logistic regression, in scikit-learn.

Reads one JSON object on stdin:
    {"train": {"texts": [...], "labels": [...]}, "eval": {"texts": [...], "labels": [...]},
     "seed": 0, "num_labels": 2}
(num_labels is optional; it names the label space macro-F1 averages over, as src/train/metrics.ts does)
and prints one JSON line on stdout:
    {"accuracy", "macro_f1", "C", "cv_accuracy", "cv_folds", "n_train", "n_eval", "n_features",
     "sklearn_version", "python_version", "method"}

The healing-bert CLI (`healing baseline`, src/analysis/bag-of-words.ts) runs this with Debian's
/usr/bin/python3 (package python3-sklearn) and feeds it exactly the examples the study samples.

Fixed hyperparameters (our choice, not tuned on any evaluation split):
- TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True), scikit-learn's defaults
  otherwise (word tokens of 2+ alphanumeric characters, min_df=1, l2-normalised rows);
- LogisticRegression(solver="lbfgs", max_iter=5000): multinomial for more than two classes;
- C from C_GRID (decades from 1e-2 to 1e4: TF-IDF rows are l2-normalised, so weak regularisation
  is often best; on 2,000 SST-2 examples cross-validated accuracy still rose from C = 100 to 1e4
  and fell at 1e5) by GridSearchCV on the training examples only: stratified K-fold (K = 5, fewer when
  the rarest class has fewer than 5 examples) shuffled with the given seed, scored by accuracy; the
  vectorizer is refitted inside each fold (a Pipeline), so no fold's IDF sees its held-out part. Ties
  go to the smallest C (GridSearchCV keeps the first best), then the pipeline is refitted on all the
  training examples with that C and scored once on the evaluation examples.

`--check` only imports scikit-learn and prints {"sklearn_version", "python_version"}: a caller's
check, before any work, that the interpreter can run the baseline.

Errors go to stderr, the last line being the message; exit code 3 means scikit-learn is missing,
2 bad input, 1 anything else.
"""
import json
import sys
import warnings

C_GRID = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
MAX_FOLDS = 5
METHOD = "tfidf(word 1-2-grams, sublinear tf)+logreg(lbfgs), C in 1e-2..1e4 by 5-fold stratified CV on train"


def fail(message, code):
    sys.stderr.write(message.replace("\n", " ") + "\n")
    sys.exit(code)


def split_of(payload, name):
    part = payload.get(name)
    if not isinstance(part, dict):
        fail(f"input: '{name}' must be an object {{texts, labels}}", 2)
    texts, labels = part.get("texts"), part.get("labels")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        fail(f"input: {name}.texts must be a list of strings", 2)
    if not isinstance(labels, list) or not all(isinstance(l, int) and not isinstance(l, bool) for l in labels):
        fail(f"input: {name}.labels must be a list of integers", 2)
    if len(texts) != len(labels) or not texts:
        fail(f"input: {name} has {len(texts)} texts and {len(labels)} labels (need the same number, at least 1)", 2)
    return texts, labels


def main():
    try:
        import sklearn
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import Pipeline
    except ImportError as error:
        fail(f"scikit-learn is not importable by {sys.executable} ({error}); on Debian/Ubuntu: apt-get install python3-sklearn", 3)
    if sys.argv[1:] == ["--check"]:
        print(json.dumps({"sklearn_version": sklearn.__version__, "python_version": sys.version.split()[0]}))
        return

    try:
        payload = json.load(sys.stdin)
    except json.JSONDecodeError as error:
        fail(f"input: not valid JSON ({error})", 2)
    if not isinstance(payload, dict):
        fail("input: expected one JSON object", 2)
    train_texts, train_labels = split_of(payload, "train")
    eval_texts, eval_labels = split_of(payload, "eval")
    seed = payload.get("seed", 0)
    if not isinstance(seed, int) or seed < 0:
        fail("input: seed must be a non-negative integer", 2)
    num_labels = payload.get("num_labels")
    if num_labels is None:
        num_labels = max(train_labels + eval_labels) + 1
    if not isinstance(num_labels, int) or num_labels < 2:
        fail("input: num_labels must be an integer >= 2", 2)
    if max(train_labels + eval_labels) >= num_labels or min(train_labels + eval_labels) < 0:
        fail(f"input: labels must lie in 0..{num_labels - 1}", 2)

    counts = [train_labels.count(c) for c in sorted(set(train_labels))]
    if len(counts) < 2:
        fail("input: the training examples hold a single class; a classifier needs two", 2)
    folds = min(MAX_FOLDS, min(counts))
    if folds < 2:
        fail("input: a class has a single training example; cross-validation needs two per class", 2)

    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
            ("logreg", LogisticRegression(solver="lbfgs", max_iter=5000)),
        ]
    )
    search = GridSearchCV(
        pipeline,
        {"logreg__C": C_GRID},
        scoring="accuracy",
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        refit=True,
        n_jobs=1,
    )
    # Counted, not printed: a warning on stderr would become the "last line" a caller reports.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(train_texts, train_labels)
        predicted = search.predict(eval_texts)
    convergence = sum(1 for w in caught if "Converge" in type(w.message).__name__)

    labels = list(range(num_labels))
    best = search.best_index_
    print(
        json.dumps(
            {
                "accuracy": float(accuracy_score(eval_labels, predicted)),
                "macro_f1": float(f1_score(eval_labels, predicted, labels=labels, average="macro", zero_division=0)),
                "C": float(search.best_params_["logreg__C"]),
                "cv_accuracy": float(search.cv_results_["mean_test_score"][best]),
                "cv_folds": folds,
                "c_grid": C_GRID,
                "n_train": len(train_texts),
                "n_eval": len(eval_texts),
                "n_features": len(search.best_estimator_.named_steps["tfidf"].vocabulary_),
                "convergence_warnings": convergence,
                "sklearn_version": sklearn.__version__,
                "python_version": sys.version.split()[0],
                "method": METHOD,
            }
        )
    )


if __name__ == "__main__":
    main()
