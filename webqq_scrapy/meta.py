"""The ``Request.meta`` keys this project sets; every one starts with ``webqq_``."""

from __future__ import annotations

# The account a request belongs to; also the key of its cookie jar (meta["cookiejar"]).
META_ACCOUNT = "webqq_account"
# The protocol step (its URL name) the request is for: in outcomes, stats and logs.
META_STEP = "webqq_step"
# How many times this request was already retried by the spider's errback.
META_RETRIES = "webqq_retries"
# Values a later step needs from an earlier answer.
META_UIN = "webqq_uin"
META_PSESSIONID = "webqq_psessionid"
# The target a session spider's request goes to ("simulator" or a simulator's URL): the
# one stored with the account's credentials (docs/sessions.md, "Which target").
META_TARGET = "webqq_target"
# What the log shows instead of the request's URL, for a URL that holds a secret of its own
# (the webhook's, e.g. ?token=…): the Crawled lines of DEBUG print request URLs whole.
META_LOG_URL = "webqq_log_url"
# An answer the download handler writes to the spider's journal the moment its last byte is
# read from the socket, before anything else in the process sees it (the messages
# spider's poll2: webqq_scrapy.download, docs/data-spiders.md "A kill loses no message").
META_JOURNAL = "webqq_journal"

# Meta keys a retried request keeps; Scrapy's own (download_latency, proxy, retry state…)
# must be computed afresh (docs/scrapy-notes.md §1.6: never copy meta wholesale).
CARRIED_META = frozenset(
    {
        "cookiejar",
        "dont_redirect",
        "dont_retry",
        "download_maxsize",
        "handle_httpstatus_list",
        "referrer_policy",
        META_ACCOUNT,
        META_STEP,
        META_UIN,
        META_PSESSIONID,
        META_TARGET,
        META_JOURNAL,
    }
)
