"""What the post-training stages (``sft``, ``reward_model``, ``rejection_sampling``, ``dpo``, ``eval``) share.

- :mod:`~gristmill.lib.post_training.datasets`: JSONL datasets in TRL's formats, read with errors that name the file
  and line: conversational ``{"messages": [...]}`` (GSM8K's ``{"question", "answer"}`` is converted), prompt pools
  ``{"prompt": [...], "answer": "N"}`` and preference pairs ``{"prompt", "chosen", "rejected"}``.
- :mod:`~gristmill.lib.post_training.generation`: :func:`load_policy` (a ``model`` artifact as ``(model,
  tokenizer)``, safetensors only), :func:`generate` (batched sampling, K samples per prompt — the part TRL no longer
  ships) and :func:`score_accuracy` (held-out exact-answer accuracy with :func:`gristmill.lib.verify.is_correct`).
- :mod:`~gristmill.lib.post_training.rewards`: :func:`load_reward_model` and :func:`reward_scores`.
- :mod:`~gristmill.lib.post_training.sampling`: :func:`sample_and_score` (K on-policy samples per prompt scored by
  the verifier and/or a reward model), :func:`preference_pairs` (best vs worst) and :func:`pass_at_k`.
- :mod:`~gristmill.lib.post_training.trainer`: :class:`TrainingConfig` (the options every training stage shares),
  :func:`training_args` (the TrainingArguments every TRL trainer here gets), :func:`stage_callback` and
  :func:`run_trainer` (train, time, save on rank 0, sum up as a :class:`TrainRun`).
- :mod:`~gristmill.lib.post_training.plots`: trainer-log curves, the score histogram, the samples table.

Torch and transformers are imported inside functions: plugin modules import this at registration time.
"""

from gristmill.lib.post_training.datasets import (
    DatasetError,
    Messages,
    conversation,
    dataset_file,
    load_conversations,
    load_preferences,
    load_prompts,
    parse_messages,
    require_answers,
    transcript_messages,
)
from gristmill.lib.post_training.generation import (
    context_length,
    end_of_turn_ids,
    generate,
    load_policy,
    score_accuracy,
)
from gristmill.lib.post_training.plots import history_plot, log_curve, samples_table, score_histogram
from gristmill.lib.post_training.rewards import load_reward_model, reward_scores
from gristmill.lib.post_training.sampling import (
    SCORERS,
    ScoredSamples,
    best_and_worst,
    pass_at_k,
    pass_at_k_ks,
    preference_pairs,
    sample_and_score,
)
from gristmill.lib.post_training.trainer import (
    LoraTrainingConfig,
    LrScheduler,
    TrainingConfig,
    TrainRun,
    run_trainer,
    save_trained,
    stage_callback,
    training_args,
)

__all__ = [
    "SCORERS",
    "DatasetError",
    "LoraTrainingConfig",
    "LrScheduler",
    "Messages",
    "ScoredSamples",
    "TrainRun",
    "TrainingConfig",
    "context_length",
    "best_and_worst",
    "conversation",
    "dataset_file",
    "end_of_turn_ids",
    "generate",
    "history_plot",
    "load_conversations",
    "load_policy",
    "load_preferences",
    "load_prompts",
    "load_reward_model",
    "log_curve",
    "parse_messages",
    "pass_at_k",
    "pass_at_k_ks",
    "preference_pairs",
    "require_answers",
    "reward_scores",
    "run_trainer",
    "sample_and_score",
    "samples_table",
    "save_trained",
    "score_accuracy",
    "score_histogram",
    "stage_callback",
    "training_args",
    "transcript_messages",
]
