"""``model`` artifacts of any architecture transformers ships (Llama, Qwen2, Mistral, Gemma-2, Phi-3, GPT-NeoX,
GPT-2 …): the folder contract and its validation (:mod:`.folder`), loading and saving with the checkpoint's dtype
(:mod:`.loading`), chat templates and pad tokens as models ship them (:mod:`.chat`), LoRA through peft
(:mod:`.lora`) and the options stages share (:mod:`.options`).

Nothing here passes ``trust_remote_code``; weights are read from safetensors only. Torch and transformers are
imported inside functions: plugin modules import this at registration time.
"""

from gristmill.lib.models.chat import ChatTemplateError, encode, has_template, prepare_tokenizer, render
from gristmill.lib.models.folder import (
    TESTED_ARCHITECTURES,
    ModelArtifactError,
    ModelFolder,
    inspect_model_folder,
)
from gristmill.lib.models.loading import (
    DtypeName,
    copy_tokenizer,
    load_causal_lm,
    load_classifier,
    load_tokenizer,
    resolve_dtype,
    save_model_dir,
)
from gristmill.lib.models.lora import LoraOptions, parameter_counts, peak_memory_mb, peft_config
from gristmill.lib.models.options import ModelOptions

__all__ = [
    "TESTED_ARCHITECTURES",
    "ChatTemplateError",
    "DtypeName",
    "LoraOptions",
    "ModelArtifactError",
    "ModelFolder",
    "ModelOptions",
    "copy_tokenizer",
    "encode",
    "has_template",
    "inspect_model_folder",
    "load_causal_lm",
    "load_classifier",
    "load_tokenizer",
    "parameter_counts",
    "peak_memory_mb",
    "peft_config",
    "prepare_tokenizer",
    "render",
    "resolve_dtype",
    "save_model_dir",
]
