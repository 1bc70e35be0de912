"""`nianbao serve`: the web page over the archive — clerks upload through a private link and see
their findings at once; the county watches 报送情况, accepts 说明, sends returns back, consolidates.
Thin over the library: every decision is the archive's or the checker's."""

from .app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]
