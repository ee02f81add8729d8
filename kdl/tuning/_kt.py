"""kdl's KerasTuner tuner: runs trials (the resumable oracles: _oracles.py).

Importing this module imports ``keras_tuner`` (about 6 s: it imports Keras 3,
docs/design.md), so :func:`kdl.tune` imports it inside the function only.

KerasTuner 1.4's stock tuners reject tf_keras models (keras-tuner issue 1039):
:class:`SearchTuner` is a ``BaseTuner`` subclass, KerasTuner's documented
extension point, whose ``run_trial`` builds the model with the kdl builder and
trains it with tf_keras ``model.fit``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import threading
import time
import warnings
from concurrent import futures

import keras_tuner as kt
import numpy as np
from keras_tuner.engine import base_tuner
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.src import config as kt_config

from kdl import _files
from kdl.backend import keras
from kdl.privacy import search_cost
from kdl.tuning import _job as jobs
from kdl.tuning._oracles import make_oracle

FUNC = jobs.FUNC
# Distributed search (docs/design.md: KerasTuner's chief/worker mode over gRPC).
# Seconds without a heartbeat after which a worker counts as lost; the
# KDL_TUNE_WORKER_TIMEOUT environment variable changes it (tests use a few s).
WORKER_TIMEOUT = 60.0


# === The tuner ===


class SearchTuner(base_tuner.BaseTuner):
    """Runs each trial with the kdl builder and tf_keras ``model.fit``."""

    def __init__(self, oracle, job: jobs.Job, **kwargs):
        self.job = job
        hypermodel = job.build.build_fn if job.build.takes_hp else None
        super().__init__(oracle, hypermodel=hypermodel, **kwargs)

    # --- files ---

    def _weights_path(self, trial_id) -> str:
        return os.path.join(self.get_trial_dir(trial_id), jobs.WEIGHTS_FILE)

    def _record_path(self, trial_id) -> str:
        return os.path.join(self.get_trial_dir(trial_id), jobs.TRIAL_FILE)

    def record(self, trial_id) -> dict:
        """kdl's record of a trial: epochs run, seconds, error."""
        return _files.read_json(self._record_path(trial_id)) or {}

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        _files.write_text(self._get_tuner_fname(), json.dumps(self.get_state()))

    # --- trials ---

    def _build(self, hp):
        job = self.job
        keras.backend.clear_session()
        if job.fit.seed is not None:
            # Every trial starts from the same seed: trials differ by their
            # arguments only, and a rebuild with the same seed repeats one.
            keras.utils.set_random_seed(job.fit.seed)
        try:
            if job.build.takes_hp:
                model = self.hypermodel.build(hp)
            else:
                model = job.call_builder(job.params(hp.values))
        except Exception as err:
            raise kt.errors.FailedTrialError(jobs.short_error(err)) from err
        job.check_model(model, kt)
        return model

    def run_trial(self, trial):
        record = {"epochs": 0, "seconds": None, "error": None}
        start = time.perf_counter()
        model = None
        try:
            model = self._build(trial.hyperparameters)
            history = self._fit(model, trial.hyperparameters.values)
            record["epochs"] = len(history.epoch)
            best = _best_score(self.job.fit, history)
            record["score"] = best  # a worker's trial line shows it
            # EarlyStopping restored the best epoch's weights.
            with _files.atomic_path(self._weights_path(trial.trial_id)) as tmp:
                model.save_weights(str(tmp))
            return {self.job.objective: best}
        except Exception as err:
            failed = isinstance(err, kt.errors.FailedTrialError)
            record["error"] = str(err) if failed else jobs.short_error(err)
            record["fatal"] = isinstance(err, kt.errors.FatalError)
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - start, 3)
            # What a private trial trained (issue 30): the search's cost.
            record["privacy"] = search_cost.trial_record(model)
            _files.write_text(self._record_path(trial.trial_id), json.dumps(record))

    def _fit(self, model, values):
        fit = self.job.fit
        if "tuner/trial_id" in values:
            # Hyperband: continue from the earlier round's weights.
            model.load_weights(self._weights_path(values["tuner/trial_id"]))
        stopper = keras.callbacks.EarlyStopping(
            monitor=fit.objective,
            mode=fit.direction,
            patience=fit.patience,
            restore_best_weights=True,
        )
        return model.fit(
            fit.x,
            fit.y,
            validation_data=fit.validation_data,
            validation_split=fit.validation_split,
            epochs=int(values.get("tuner/epochs", fit.epochs)),
            initial_epoch=int(values.get("tuner/initial_epoch", 0)),
            batch_size=fit.batch_size,
            # The user's callbacks: a fresh copy per trial, as KerasTuner's own
            # search does (issue 31).
            callbacks=[stopper, keras.callbacks.TerminateOnNaN()]
            + copy.deepcopy(list(fit.callbacks)),
            verbose=2 if fit.verbose >= 2 else 0,
            **fit.fit_kwargs,
        )

    def load_model(self, trial):
        model = self._build(trial.hyperparameters)
        model.load_weights(self._weights_path(trial.trial_id))
        return model

    def on_trial_end(self, trial):
        self._stop_heartbeat()
        try:
            super().on_trial_end(trial)
        finally:
            worker = self.job.search.role == "worker"
            jobs.report_trial(self, trial, oracle=None if worker else self.oracle)

    # --- distributed search (KerasTuner's chief/worker mode) ---

    _heartbeat = None
    _waiting = False
    _trial = None

    def search(self, *fit_args, **fit_kwargs):
        """Runs trials; on the chief of a distributed search, serves them.

        KerasTuner's own chief loop (``oracle_chief.start_server``) would wait
        forever for a worker that died mid-trial: the chief runs
        :func:`serve` instead, with KerasTuner's servicer and protocol.
        """
        role = self.job.search.role
        if role == "chief":
            self.save()
            serve(self)
            return
        try:
            super().search(*fit_args, **fit_kwargs)
        except kt.errors.FatalError:
            if role == "worker" and self._trial is not None:
                # Tell the chief (the trial's record says "fatal"), which then
                # stops the search for every worker.
                self._trial.status = TrialStatus.FAILED
                self.oracle.end_trial(self._trial)
            raise
        finally:
            self._stop_heartbeat()

    def pre_create_trial(self):
        if self._waiting:
            # The last request got no trial (IDLE): the chief waits for trials
            # still running elsewhere. Ask again in a moment, not in a loop.
            time.sleep(_heartbeat_every())
        self._waiting = True

    def on_trial_begin(self, trial):
        self._waiting = False
        self._trial = trial
        if self.job.search.role == "worker":
            self._heartbeat = _Heartbeat(self.oracle, trial.trial_id)

    def _stop_heartbeat(self):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None


def _worker_timeout() -> float:
    return float(os.environ.get("KDL_TUNE_WORKER_TIMEOUT", WORKER_TIMEOUT))


def _heartbeat_every() -> float:
    return min(2.0, _worker_timeout() / 4)


class _Heartbeat:
    """A worker's thread telling the chief, every few seconds, that it lives.

    It sends KerasTuner's own GetTrial request for the running trial, which
    the chief's oracle counts as a sign of life.
    """

    def __init__(self, client, trial_id):
        from keras_tuner.src import protos

        self._stop = threading.Event()
        request = protos.get_service().GetTrialRequest(trial_id=trial_id)
        self._thread = threading.Thread(
            target=self._run, args=(client.stub, request), daemon=True
        )
        self._thread.start()

    def _run(self, stub, request):
        import grpc

        every = _heartbeat_every()
        while not self._stop.wait(every):
            try:
                stub.GetTrial(request, timeout=every * 5)
            except grpc.RpcError:
                pass  # the chief is busy or gone; the next beat tries again

    def stop(self):
        self._stop.set()


def serve(tuner: SearchTuner) -> None:
    """The chief: serves the oracle to workers until the search is done.

    Uses KerasTuner's servicer and gRPC protocol (workers are unchanged
    KerasTuner clients). The chief runs no trial. Every half second it drops
    workers whose heartbeat stopped (their trial is retried or failed).

    Raises:
        RuntimeError: when the address cannot be served, after too many
            failed trials in a row, or after a worker's fatal error.
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    oracle = tuner.oracle
    address = (
        f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    )
    servicer = oracle_chief.OracleServicer(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        server.add_insecure_port(address)
    except RuntimeError as err:
        raise RuntimeError(f"kdl.tune: cannot serve the search at {address}") from err

    def on_end(trial):
        jobs.report_trial(tuner, trial, oracle=oracle)

    oracle.kdl_serve(timeout=_worker_timeout(), on_end=on_end)
    server.start()
    try:
        # Stop once told to (a worker got STOPPED, or a fatal error) and no
        # worker is left waiting for an answer.
        while not (
            (servicer.stop_triggered or oracle.kdl_fatal is not None)
            and oracle.kdl_done()
        ):
            time.sleep(0.5)
            oracle.kdl_drop_lost_workers()
    finally:
        server.stop(grace=2)
        oracle.kdl_serving = False
    if oracle.kdl_fatal is not None:
        raise oracle.kdl_fatal


def _best_score(fit: jobs.FitSpec, history) -> float:
    """The trial's objective: its best epoch, which must be finite."""
    scores = history.history.get(fit.objective)
    if scores is None:
        raise kt.errors.FatalValueError(
            f"The 'objective' parameter of {FUNC} must be a metric the model "
            f"logs ({', '.join(history.history)}). Got {fit.objective!r} instead."
        )
    scores = np.asarray(scores, dtype="float64")
    if not np.isfinite(scores).any():
        raise kt.errors.FailedTrialError(
            f"{fit.objective} was never finite (training diverged)"
        )
    best = np.nanmin(scores) if fit.direction == "min" else np.nanmax(scores)
    return float(best)


# === Running a search ===


@contextlib.contextmanager
def quiet_keras_tuner(*, print_: bool = False):
    """Silences KerasTuner's tracebacks of failed trials (kdl prints a line).

    Its other prints ("Reloading Tuner from ...") are swallowed unless
    ``print_``: during the search they are off anyway (oracle verbose 0) and
    stdout must stay open for Keras' epoch lines.
    """
    debug = kt_config.DEBUG
    kt_config.DEBUG = False
    try:
        with (
            warnings.catch_warnings(),
            (
                contextlib.nullcontext()
                if print_
                else contextlib.redirect_stdout(io.StringIO())
            ),
        ):
            # The Bayesian oracle's Gaussian-process fits warn about length
            # scales on every trial of a small search.
            warnings.filterwarnings("ignore", module=r"sklearn\.gaussian_process")
            yield
    finally:
        kt_config.DEBUG = debug


def make_tuner(job: jobs.Job) -> SearchTuner:
    """The tuner of ``job``, reloading the search found in its folder."""
    path = job.directory
    oracle = make_oracle(job)
    # A grid's size is known now: trial lines read "trial 2/6".
    job.search = dataclasses.replace(job.search, max_trials=oracle.max_trials)
    with quiet_keras_tuner():
        tuner = SearchTuner(
            oracle,
            job,
            directory=str(path.parent),
            project_name=path.name,
            # tune() moved any folder it does not resume aside: never delete.
            overwrite=False,
        )
        tuner.oracle.verbose = 0
    return tuner


def finished_trials(tuner) -> int:
    """Trials already finished (0 on a worker, which keeps no oracle)."""
    if tuner.job.search.role == "worker":
        return 0
    return len(tuner.oracle.end_order)


def run_search(tuner: SearchTuner) -> None:
    """Runs the search; a fatal error or too many failures stop it.

    Raises:
        The builder's fatal error itself (TypeError, ValueError), or
        RuntimeError after ``max_consecutive_failed_trials`` failed trials in a row.
    """
    job = tuner.job
    try:
        with quiet_keras_tuner(print_=True):
            tuner.search()
    except kt.errors.FatalError as err:
        raise (err.__cause__ or err) from None
    except RuntimeError as err:
        if "consecutive failures" not in str(err):
            raise
        raise RuntimeError(
            f"tune stopped: {job.search.max_failures} trials in a row failed "
            f"(see {job.directory / jobs.TRIALS_CSV}). The last error: "
            f"{jobs.last_error(tuner, tuner.oracle)}"
        ) from None


def best_trial(tuner):
    """The best completed trial; RuntimeError when none completed."""
    job = tuner.job
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        raise RuntimeError(
            f"tune finished without a completed trial (see "
            f"{job.directory / jobs.TRIALS_CSV}). The last error: "
            f"{jobs.last_error(tuner, tuner.oracle)}"
        )
    return best[0]
