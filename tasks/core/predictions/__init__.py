"""Daily predictions of production models: which days, which model, scored and stored."""
