"""SAR-KnowLIP processor: the project's SAR image processor (`SarclipImageProcessor`) + a BERT WordPiece tokenizer.

The image processor class is not imported here: `save_pretrained` copies its own file next to this one (it is
registered for `AutoImageProcessor`), and loading resolves it through `AutoImageProcessor`.
"""

from transformers import ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature

from .configuration_knowlip import VQA_TASK_TYPES


class SarKnowlipProcessor(ProcessorMixin):
    """Prepares `pixel_values` and `input_ids` / `attention_mask` (BERT: [CLS] text [SEP]).

    `padding`, `truncation`, `max_length` and `return_tensors` have the tokenizer's meanings; by default texts are
    padded to the longest in the batch, truncated to `max_length` (default: the tokenizer's `model_max_length`;
    paper Table 5 uses 35 tokens for retrieval and VQA, 100 for captions) and returned as torch tensors
    ("np": numpy arrays; None: token lists, and `pixel_values` stays a tensor).
    """

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer)

    def __call__(self, images=None, text=None, padding="longest", truncation=True, max_length=None,
                 return_tensors="pt"):
        if images is None and text is None:
            raise ValueError("SarKnowlipProcessor needs `images`, `text` or both")
        data = {}
        if text is not None:
            encoded = self.tokenizer(text, padding=padding, truncation=truncation, max_length=max_length,
                                     return_token_type_ids=False)
            data.update(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
        if images is not None:
            data.update(self.image_processor(images, return_tensors="pt"))
        return BatchFeature(data=data, tensor_type=return_tensors)

    def vqa_inputs(self, questions, task_types, images=None, answers=None, max_length=None):
        """VQA text "task type: question [SEP] answer" (task types of paper Table 6).

        With `answers` (fine-tuning) also returns `mlm_mask` marking the answer tokens; without, the answer slot is
        one [MASK] for `SarKnowlipForQuestionAnswering.generate`.
        """
        questions = [questions] if isinstance(questions, str) else list(questions)
        task_types = [task_types] * len(questions) if isinstance(task_types, str) else list(task_types)
        if len(task_types) != len(questions):
            raise ValueError(f"got {len(questions)} questions but {len(task_types)} task types")
        unknown = sorted({task for task in task_types if task not in VQA_TASK_TYPES})
        if unknown:
            raise ValueError(f"unknown VQA task types {unknown}; expected one of {list(VQA_TASK_TYPES)}")
        prompts = [f"{task}: {question}" for task, question in zip(task_types, questions)]
        if answers is None:
            data = self._tokenize(prompts, [self.tokenizer.mask_token] * len(prompts), max_length)
            del data["mlm_mask"]
        else:
            answers = [answers] if isinstance(answers, str) else list(answers)
            if len(answers) != len(prompts):
                raise ValueError(f"got {len(prompts)} questions but {len(answers)} answers")
            data = self._tokenize(prompts, answers, max_length)
        if images is not None:
            data.update(self.image_processor(images, return_tensors="pt"))
        return BatchFeature(data=data, tensor_type="pt")

    def _tokenize(self, text, text_pair, max_length):
        encoded = self.tokenizer(
            text, text_pair, padding="longest", truncation="only_first" if text_pair is not None else True,
            max_length=max_length, return_tensors="pt",
            return_token_type_ids=text_pair is not None, return_special_tokens_mask=text_pair is not None,
        )
        data = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        if text_pair is not None:
            answer = (encoded["token_type_ids"] == 1) & (encoded["special_tokens_mask"] == 0)
            data["mlm_mask"] = answer & (encoded["attention_mask"] == 1)
        return data

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values"]


__all__ = ["SarKnowlipProcessor"]
