"""Where the data comes from: dataset sources, the sft/rl/test splits, quizzes, the base model."""
