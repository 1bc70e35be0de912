"""Published reports: reading the text, HTML or PDF of a report as published (source → tokens →
walk of the official tables → identity and narrative checks), writing what was read back as a
return, and auditing reports by the hundred."""
