"""``dubhe-bench``: benchmark commands that print what they measured and ratios against a
baseline measured in the same run."""
