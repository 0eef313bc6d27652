"""The model options every stage that loads a ``model`` shares: ``dtype`` and ``chat_template``."""

from pydantic import BaseModel, Field

from gristmill.lib.models.loading import DtypeName


class ModelOptions(BaseModel):
    """How a stage loads its model inputs."""

    dtype: DtypeName = Field(
        "auto",
        description="Weights dtype: auto keeps the checkpoint's (float16 → float32 on a CPU); bfloat16, float16 or "
        "float32 cast it. Outputs are saved in this dtype.",
    )
    chat_template: str | None = Field(
        None,
        description="Chat template (inline Jinja or a file path) overriding the one the model folder ships; saved "
        "into the output folder. None: the shipped one (a base model without one uses plain prompt/completion text).",
    )
