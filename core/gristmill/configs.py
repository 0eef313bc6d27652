"""Config bases of the stage contract: every stage config, and the launch block of stages that train."""

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


class RenamedFields(BaseModel):
    """A config model whose ``RENAMED`` maps old field names to new ones: an old name in YAML is an error that names
    the new one (``'grad_accum' was renamed 'gradient_accumulation_steps'``), not just "extra inputs"."""

    RENAMED: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            errors = [
                InitErrorDetails(
                    type=PydanticCustomError("renamed_field", "'{old}' was renamed '{new}'", {"old": old, "new": new}),
                    loc=(old,),
                    input=data[old],
                )
                for old, new in cls.RENAMED.items()
                if old in data
            ]
            if errors:
                raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


class StageConfig(RenamedFields):
    """Base for stage config models: unknown fields are errors (a renamed one names its new name), values are
    validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoConfig(StageConfig):
    """A stage without options."""


class LaunchConfig(BaseModel):
    """Where an accelerate-launched stage runs (the ``launch:`` block of a training stage's config)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "inline", "child"] = Field(
        "auto",
        description="inline: in the Dagster run process; child: an accelerate launch job; auto: a child when "
        "more than one process/machine or a GPU is present, else inline.",
    )
    processes: int = Field(1, ge=1, description="Processes per machine (GPUs per machine; CPU processes on CPU).")
    machines: int = Field(1, ge=1, description="Machines in the job (accelerate --num_machines).")
    machine_rank: int = Field(0, ge=0, description="This machine's rank (accelerate --machine_rank).")
    main_process_ip: str | None = Field(None, description="Rank-0 machine address for multi-machine jobs.")
    main_process_port: int | None = Field(None, ge=1, le=65535, description="Rank-0 port (default: accelerate's).")
    gpu_ids: str | None = Field(None, description='GPUs to use, e.g. "0,1" (accelerate --gpu_ids); None: all.')
    extra_args: list[str] = Field(default_factory=list, description="More `accelerate launch` flags, verbatim.")


class LaunchableConfig(StageConfig):
    """Base config of stages whose run policy launches with accelerate (``policy=TRAINING``): the ``launch:`` block
    says where they run. ``StageSpec`` rejects such a stage whose config does not subclass this."""

    launch: LaunchConfig = Field(
        default_factory=LaunchConfig, description="inline, or a child accelerate launch job (processes, machines)."
    )
