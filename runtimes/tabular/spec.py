"""What a person asks to train: the label (a catalog table or one query, with its entity key, label time and label
column), the features (feature view references and/or columns of the label source), task, model family, metric
and tuning budget. Checked here for shape only; the data is checked by the plan."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import UserError

Task = Literal["classification", "regression"]
Family = Literal["lightgbm", "sklearn", "xgboost"]
METRICS: dict[str, tuple[str, ...]] = {"classification": ("roc_auc", "accuracy", "f1", "log_loss"),
                                       "regression": ("rmse", "mae", "r2")}


class LabelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, description="a catalog table, or one read-only SELECT")
    column: str = Field(min_length=1, description="the column to predict")
    entity: str | None = Field(None, description="the entity key column (needed with feature views)")
    time: str | None = Field(None, description="the label time column: features as of then; a time-based split")


class TrainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: LabelSpec
    features: list[str] = Field(default_factory=list, description="feature view references: view, view:feature, view@2")
    columns: list[str] = Field(default_factory=list, description="columns of the label source used as features")
    sensitive: list[str] = Field(default_factory=list, description="columns of the label source to check for bias, "
                                 "besides those tagged `sensitive` in the catalog")
    task: Task | None = None
    family: Family = "lightgbm"
    metric: str | None = None
    trials: int | None = Field(None, description="the tuning budget in trials")
    minutes: float | None = Field(None, description="the tuning budget in minutes")
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 0
    name: str | None = Field(None, description="the registered model's name (default: <label column>-<family>)")

    @model_validator(mode="after")
    def _budget(self) -> "TrainSpec":
        if self.trials is not None and self.trials < 1:
            raise ValueError(f"the tuning budget must be at least 1 trial, not {self.trials}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"the tuning budget in minutes must be more than 0, not {self.minutes:g}")
        if not self.features and not self.columns:
            raise ValueError("no features: name feature views (features) or columns of the label source (columns)")
        if self.features and not (self.label.entity and self.label.time):
            raise ValueError("features from feature views need the label's entity key and time columns "
                             "(label.entity, label.time) to join them as of each label")
        return self

    @classmethod
    def parse(cls, data: "TrainSpec | dict[str, Any]") -> "TrainSpec":
        if isinstance(data, TrainSpec):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise UserError(f"train request: {where + ': ' if where else ''}{msg}") from None
