"""kdl's KerasTuner oracles: atomic state files, no finished trial run twice.

They subclass KerasTuner's oracles and override some of their private state
(``_retry_queue``, ``_run_times``, ``_save_trial``, ...): tests/test_tuning.py
pins those internals, so a KerasTuner upgrade that moves them fails loudly.
Importing this module imports ``keras_tuner`` (seconds).
"""

from __future__ import annotations

import json
import math
import os
import time

import keras_tuner as kt
from keras_tuner.engine.trial import Trial, TrialStatus

from kdl import _files
from kdl.tuning import _job as jobs
from kdl.tuning import _search_space as spaces

FUNC = jobs.FUNC
# A worker's trial is retried this many times when the worker stops answering.
LOST_RETRIES = 1


# === Oracles ===


class ResumableOracle:
    """Oracle mixin: atomic state files, and no finished trial run twice.

    KerasTuner writes its JSON state in place, and ends a trial by saving the
    trial's file and then the oracle's: a process killed between the two
    reloads the finished trial as "ongoing" and runs it again. Here each file
    is written to a temporary name and renamed, and on reload a trial whose
    own file says it finished is recorded as finished.
    """

    def save(self):
        _files.write_text(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        _files.write_text(path, json.dumps(trial.get_state()))

    def reload(self):
        super().reload()
        # KerasTuner saves a new trial's file before the oracle's: a process
        # killed between the two leaves a "RUNNING" trial the oracle does not
        # list as ongoing, which would never run but still count against
        # max_trials. It is retried like any trial the kill interrupted.
        for trial_id, trial in self.trials.items():
            if trial.status == "RUNNING" and trial_id not in self._retry_queue:
                self._retry_queue.append(trial_id)
                if trial_id not in self.start_order:
                    self.start_order.append(trial_id)
        for trial_id in list(self._retry_queue):
            if self.trials[trial_id].status in ("COMPLETED", "FAILED"):
                self._retry_queue.remove(trial_id)
                self._run_times[trial_id] += 1
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
                self._recovered(trial_id)

    def _recovered(self, trial_id):
        """Hook: a trial ended without end_trial (found on reload, or lost)."""

    # --- serving workers (the chief of a distributed search) ---
    #
    # KerasTuner's chief waits for a worker that died mid-trial forever: the
    # trial stays "ongoing" and the worker's id stays registered. While kdl
    # serves, workers send a heartbeat (GetTrial) during each trial; a worker
    # silent for `timeout` seconds loses its trial, which goes to the retry
    # queue once, then is marked failed. A worker asking for a trial when
    # none is left waits (IDLE) while others still run one, so that it can
    # take over a trial lost that way.

    kdl_serving = False
    kdl_fatal = None

    def kdl_serve(self, *, timeout: float, on_end) -> None:
        """Starts serving: heartbeat timeout (s) and a hook for ended trials."""
        self.kdl_serving = True
        self.kdl_timeout = timeout
        self.kdl_on_end = on_end
        self.kdl_seen = {}

    def _kdl_seen_trial(self, trial_id) -> None:
        for tuner_id, trial in self.ongoing_trials.items():
            if trial.trial_id == trial_id:
                self.kdl_seen[tuner_id] = time.monotonic()

    @kt.synchronized
    def create_trial(self, tuner_id):
        if not self.kdl_serving:
            return super().create_trial(tuner_id)
        self.kdl_seen[tuner_id] = time.monotonic()
        if self.kdl_fatal is not None:
            self.tuner_ids.discard(tuner_id)
            return Trial(self.get_space(), status=TrialStatus.STOPPED)
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.STOPPED and self.ongoing_trials:
            self.tuner_ids.add(tuner_id)
            trial.status = TrialStatus.IDLE
        return trial

    def get_trial(self, trial_id):
        if self.kdl_serving:
            self._kdl_seen_trial(trial_id)  # a worker's heartbeat
        return super().get_trial(trial_id)

    @kt.synchronized
    def end_trial(self, trial):
        if not self.kdl_serving:
            return super().end_trial(trial)
        self._kdl_seen_trial(trial.trial_id)
        running = {t.trial_id for t in self.ongoing_trials.values()}
        if trial.trial_id not in running:
            if trial.trial_id not in self._retry_queue:
                return None  # a late result: another worker runs it again
            self._retry_queue.remove(trial.trial_id)
        # Trial messages do not travel over gRPC: the worker's record in the
        # shared folder says whether its error was fatal.
        path = os.path.join(self._get_trial_dir(trial.trial_id), jobs.TRIAL_FILE)
        record = _files.read_json(path) or {}
        if trial.status == TrialStatus.FAILED and record.get("fatal"):
            self.kdl_fatal = RuntimeError(
                f"tune stopped: a worker hit a fatal error: {record.get('error')}"
            )
            # That worker raises the error and leaves.
            for tuner_id, ongoing in self.ongoing_trials.items():
                if ongoing.trial_id == trial.trial_id:
                    self.tuner_ids.discard(tuner_id)
        super().end_trial(trial)
        self.kdl_on_end(self.trials[trial.trial_id])
        return None

    def _check_consecutive_failures(self):
        try:
            super()._check_consecutive_failures()
        except RuntimeError as err:
            if not self.kdl_serving:
                raise
            self.kdl_fatal = self.kdl_fatal or err

    @kt.synchronized
    def kdl_drop_lost_workers(self) -> None:
        """Takes the trial of every worker silent for longer than the timeout."""
        now = time.monotonic()
        for tuner_id in list(self.tuner_ids):
            seen = self.kdl_seen.setdefault(tuner_id, now)
            if now - seen <= self.kdl_timeout:
                continue
            self.tuner_ids.discard(tuner_id)
            trial = self.ongoing_trials.pop(tuner_id, None)
            if trial is not None:
                self._kdl_lost(trial, tuner_id)

    def _kdl_lost(self, trial, tuner_id) -> None:
        trial_id = trial.trial_id
        self._run_times[trial_id] += 1
        message = (
            f"its worker {tuner_id} stopped answering (no heartbeat for "
            f"{self.kdl_timeout:g} s)"
        )
        if self._run_times[trial_id] <= LOST_RETRIES:
            print(f"kdl.tune: trial {int(trial_id) + 1}: {message}; retrying it")
            self._retry_queue.append(trial_id)
        else:
            trial.status = TrialStatus.FAILED
            trial.message = message
            record = {"epochs": 0, "seconds": None, "error": message}
            path = os.path.join(self._get_trial_dir(trial_id), jobs.TRIAL_FILE)
            _files.write_json(path, record)
            self.end_order.append(trial_id)
            self._recovered(trial_id)  # the grid walk goes on past it
            self._check_consecutive_failures()
        self._save_trial(trial)
        self.save()
        if trial.status == TrialStatus.FAILED:
            self.kdl_on_end(trial)

    @kt.synchronized
    def kdl_done(self) -> bool:
        """No trial running, no worker waiting: the chief may stop."""
        return not self.ongoing_trials and not self.tuner_ids


class GridOracle(ResumableOracle, kt.oracles.GridSearchOracle):
    """KerasTuner's grid oracle, with its walk saved so that it resumes.

    KerasTuner 1.4.8 does not save the grid walk (``_ordered_ids``,
    ``_populate_next``; keras-tuner issue 1055): a reloaded grid search fails
    with KeyError or stops early. The walk is saved with the state.
    """

    def get_state(self):
        state = super().get_state()
        links, order = self._ordered_ids, []
        index = links._next_index[None]
        while index is not None:
            order.append(links._memory[index])
            index = links._next_index[index]
        state["kdl_grid_order"] = order
        state["kdl_grid_populate_next"] = list(self._populate_next)
        return state

    def set_state(self, state):
        super().set_state(state)
        self._ordered_ids = type(self._ordered_ids)()
        for trial_id in state.get("kdl_grid_order", []):
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(state.get("kdl_grid_populate_next", []))

    def _recovered(self, trial_id):
        self._populate_next.append(trial_id)


class BayesianOracle(ResumableOracle, kt.oracles.BayesianOptimizationOracle):
    """KerasTuner's Bayesian oracle, never running the same arguments twice.

    In a small discrete space its Gaussian process often proposes a point
    already tried, and KerasTuner 1.4.8 runs it again, spending the budget on
    repeats; such a proposal is replaced by an untried random point.
    """

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        values = response.get("values")
        if values is not None and self._duplicate(values):
            return self._random_populate_space()
        return response


class RandomOracle(ResumableOracle, kt.oracles.RandomSearchOracle):
    """KerasTuner's random oracle with atomic, resumable state."""


class HyperbandOracle(ResumableOracle, kt.oracles.HyperbandOracle):
    """KerasTuner's Hyperband oracle with atomic, resumable state."""


ORACLES = {
    "grid": GridOracle,
    "random": RandomOracle,
    "bayesian": BayesianOracle,
    "hyperband": HyperbandOracle,
}


def make_oracle(job: jobs.Job):
    """The oracle of ``job``'s algorithm, with its space and budget."""
    search = job.search
    hyperparameters = None
    max_trials = search.max_trials
    if not job.build.takes_hp:
        hyperparameters = kt.HyperParameters()
        for name, spec in job.build.space.items():
            spaces.declare(spec, hyperparameters, name)
        if search.algorithm == "grid":
            size = math.prod(len(list(h.values)) for h in hyperparameters.space)
            max_trials = size if max_trials is None else min(size, max_trials)
    common = dict(
        objective=kt.Objective(job.objective, direction=job.fit.direction),
        # KerasTuner treats seed=0 as "no seed": shift by one.
        seed=None if job.fit.seed is None else job.fit.seed + 1,
        hyperparameters=hyperparameters,
        max_consecutive_failed_trials=search.max_failures,
    )
    if search.algorithm == "hyperband":
        oracle = HyperbandOracle(
            max_epochs=job.fit.epochs, factor=search.factor, **common
        )
        oracle.max_trials = max_trials  # a cap on top of the brackets
        return oracle
    if search.algorithm == "bayesian":
        # KerasTuner starts with max(3 * dimensions, 3) random trials; in a
        # small budget that leaves no trial to the Gaussian process, so at most
        # half of the budget is random here.
        dims = max(len(job.build.space), 1)
        initial = max(2, min(3 * dims, max_trials // 2))
        return BayesianOracle(
            max_trials=max_trials, num_initial_points=initial, **common
        )
    return ORACLES[search.algorithm](max_trials=max_trials, **common)
