"""nianbao — 政府信息公开工作年度报告 templates, checks and consolidation."""

__version__ = "0.1.0"
