"""Scrapy settings for webqq_scrapy; every ``WEBQQ_*`` default is defined and documented here once.

``webqq_scrapy.config.WebQQConfig.from_settings`` reads and validates them; a wrong value
stops the crawl at start with an error naming the setting.
"""

BOT_NAME = "webqq_scrapy"
SPIDER_MODULES = ["webqq_scrapy.spiders"]
NEWSPIDER_MODULE = "webqq_scrapy.spiders"
COMMANDS_MODULE = "webqq_scrapy.commands"

# --- WebQQ login -------------------------------------------------------------------------

# Where the login goes: "simulator" (an offline WebQQ server started inside the crawl, with
# an automatic virtual phone), "tencent" (the historical https hosts, closed since
# 2019-01-01), or "http://HOST:PORT" of a simulator started with
# ``python -m webqq_scrapy.simulator``.
WEBQQ_TARGET = "simulator"

# The ptlogin2 app (docs/apps.md) that `scrapy login`, `scrapy crawl qrlogin`, `scrapy creds`
# and session_check work on when no `--app` / `-a app=` is given: "webqq", "qzone",
# "qzone_h5" or "qun". The WebQQ data spiders always use the "webqq" records.
WEBQQ_APP = "webqq"

# Seconds between two ptqrlogin polls while the QR waits to be scanned (code 66) …
WEBQQ_POLL_INTERVAL = 2.0
# … and after it was scanned (code 67), as the official page does (docs/protocol.md §3.2).
WEBQQ_SCANNED_POLL_INTERVAL = 1.0

# The grid, in seconds, that accounts' waits end on (polls, retries), rounded up so no wait
# is shorter than asked: the accounts whose waits end on one tick share one timer and their
# requests go out in one turn of the event loop, which costs less CPU per request than one
# turn each (docs/performance.md "Waits on a grid"). A poll comes up to this much later
# than its interval. 0 = no grid (every wait its own timer). At most 10.
WEBQQ_WAIT_TICK = 0.1

# How many times an expired QR (code 65) is replaced by a new one before the account ends
# with the outcome "expired".
WEBQQ_MAX_QR_REFRESHES = 5

# Seconds an account may take from its first QR to its credentials; then "timeout".
WEBQQ_LOGIN_TIMEOUT = 600.0

# Admission by headroom (qrlogin; docs/performance.md "Admission by headroom"): an account
# gets its QR only while the process has room for it. Three checks, every one of them
# waived while no account is in flight, so a crawl always progresses:
#
# WEBQQ_ADMISSION_CPU_SHARE: the accounts in flight, one more included, may take at most
# this many cores of the crawl process, at what the accounts in flight have cost so far
# (CPU seconds per second in flight, measured over the last 10 s: their polls, QRs and the
# steps after their confirms). An idle process admits as fast as it can serve; a saturated
# one stops. 0 = off.
WEBQQ_ADMISSION_CPU_SHARE = 1.0

# WEBQQ_ADMISSION_MAX_LAG: no new account while the crawl's event loop runs more than this
# many seconds late: the lateness is how long every step waits its turn, whatever makes the
# process busy (its own accounts, or other processes on the machine), so this keeps the
# wait after a confirm short under any load. 0 = off.
WEBQQ_ADMISSION_MAX_LAG = 0.1

# WEBQQ_ADMISSION_MAX_WAIT: no new account while an account confirmed lately waited (or is
# still waiting) longer than this many seconds for its credentials to be stored, measured
# from the poll that brought its confirm: the wait a person feels is the feedback itself.
# "auto" = half of WEBQQ_SCANNED_POLL_INTERVAL + 0.3 s, at least 1 s (1 s with the 1 s
# default; 1.15 s at 2 s). 0 = off.
WEBQQ_ADMISSION_MAX_WAIT = "auto"

# WEBQQ_MAX_ACCOUNTS_IN_FLIGHT: a hard bound on the accounts in flight (first QR fetched,
# no outcome yet), whatever the headroom: it bounds the memory (about 50 KB each) and how
# many QRs are shown at once. 0 = no limit. qrlogin_redis bounds itself by
# WEBQQ_REDIS_MAX_IN_FLIGHT instead (the waiting names stay in the Redis list, where other
# processes can take them).
WEBQQ_MAX_ACCOUNTS_IN_FLIGHT = 2000

# WEBQQ_ADMISSION_RATE: accounts admitted (first QR fetched) per second at most, after a
# first second's worth at once; 0 = no pacing (the default since admission by headroom: a
# fixed rate held an idle process at that rate and lost the batching of its work).
WEBQQ_ADMISSION_RATE = 0.0

# Accounts of one contacts crawl reading their contacts at once (first call made, records
# not stored yet); the others wait, queued, before their first call. A 2,000-member
# group's answer is hundreds of KB to parse and thousands of records to store: the bound
# keeps a few such accounts from stalling the rest of the process. 0 = no limit. The
# default is from docs/performance.md "Admission".
WEBQQ_CONTACTS_MAX_ACCOUNTS_IN_FLIGHT = 20

# Transient faults (HTTP 5xx, 408, 429, timeouts, dropped connections) on any step are
# retried this many times, waiting BACKOFF seconds before the first retry and twice as long
# before each next one (never past WEBQQ_LOGIN_TIMEOUT). Permanent answers (HTTP 403,
# retcodes such as 100000) are not retried. Scrapy's RetryMiddleware is bypassed for the
# login requests: it has no backoff.
WEBQQ_RETRY_TIMES = 3
WEBQQ_RETRY_BACKOFF = 0.5

# Estimated lifetime of a WebQQ session, used for Credentials.expires_at. docs/protocol.md §8.1:
# sessions were forced offline after one to two days; this is an estimate, not a promise.
WEBQQ_SESSION_LIFETIME = 2 * 24 * 3600

# Directory for the QR PNG files (created 0700; files 0600; each removed when its account
# finishes); it must be this user's, on a path no other user controls. Empty: the per-user
# runtime directory "$XDG_RUNTIME_DIR/webqq_scrapy/qr" when there is one, else
# "<temp dir>/webqq_scrapy-<uid>/qr" (or, if another user created that first, a fresh
# "<temp dir>/webqq_scrapy-<uid>-<random>/qr", with a WARNING).
WEBQQ_QR_DIR = ""

# Print each QR into the terminal with half-block characters: "auto" (when stderr is a
# terminal), True or False. It is written to stderr, never to the log.
WEBQQ_QR_TERMINAL = "auto"

# Behaviour of the virtual phone of the embedded simulator (WEBQQ_TARGET = "simulator"):
# it scans each QR after SCAN_AFTER seconds and confirms it CONFIRM_AFTER seconds later.
WEBQQ_SIMULATOR_SCAN_AFTER = 1.0
WEBQQ_SIMULATOR_CONFIRM_AFTER = 1.0
# Seconds a QR of the embedded simulator stays valid (the real service: about 120).
WEBQQ_SIMULATOR_QR_LIFETIME = 120.0

# A crawl stopped before every account has an outcome (Ctrl-C, SIGTERM, scrapyd cancel,
# CLOSESPIDER_*) lists the accounts left without one, started or never started, in this
# file (one name a line, "#" comments: rerun them with -a accounts_file=PATH; mode 0600),
# and names them in a WARNING. Empty: a new file per run,
# "<user data dir>/webqq_scrapy/unfinished/<spider>-<scrapyd job, or UTC time-pid>.txt".
WEBQQ_UNFINISHED_PATH = ""

# The world of the embedded simulator's accounts (docs/simulator.md): friends, groups, members
# of each group (the user included), discussions; 0 keeps them empty, as before.
WEBQQ_SIMULATOR_FRIENDS = 0
WEBQQ_SIMULATOR_GROUPS = 0
WEBQQ_SIMULATOR_GROUP_MEMBERS = 20
WEBQQ_SIMULATOR_DISCUSSIONS = 0
# Every logged-in session of the embedded simulator receives a message every CHATTER
# seconds (0: never).
WEBQQ_SIMULATOR_CHATTER = 0.0
# Seconds the embedded simulator holds a poll2 with nothing to deliver (the real service:
# about 60, docs/protocol.md §5.1; 0 answers at once).
WEBQQ_SIMULATOR_POLL_HOLD = 0.0
# Strict mode of the embedded simulator (docs/simulator.md, "Two modes"): besides what the
# real service refused, also refuse what only a browser or the official page would never
# send (cookies outside their domain, inexact parameter forms). Off: as strict as the real
# service; the project's own tests turn it on.
WEBQQ_SIMULATOR_STRICT = False

# --- The messages spider (docs/spiders.md) ------------------------------------------------
# Seconds between two looks at the store's outbox (what `scrapy send` queued); also how
# often the spider marks its accounts as held, which `scrapy send` checks.
WEBQQ_MESSAGES_OUTBOX_INTERVAL = 1.0
# After a poll2 answer asking for a retry (an unexpected retcode), wait this long before
# polling again, and give up on the account after more than MAX_FAILURES in a row (the
# official page: 10 s and 8, docs/protocol.md §7).
WEBQQ_MESSAGES_RETRY_DELAY = 10.0
WEBQQ_MESSAGES_MAX_FAILURES = 8
# Sessions starting at once: reading the names of the account's stored contacts (one
# database read each, large for 2,000-member groups) with its first poll2 outstanding;
# the others wait, queued, with no poll. A started session counts no more: it holds one
# poll2, which costs nothing while it waits. 0 = no limit. The default is Scrapy's
# REACTOR_THREADPOOL_MAXSIZE: more reads at once would only queue for a thread.
WEBQQ_MESSAGES_MAX_STARTING = 10
# A stop is graceful: the polls (and sends) in flight may be answered for this many seconds
# after it, then they are cancelled and the crawl closes. The service holds a poll2 about
# 60 s (docs/protocol.md §5.1); 0 = cancel at once (the messages they carry are then
# delivered to the next run).
WEBQQ_MESSAGES_STOP_WAIT = 65.0

# Qzone (docs/qzone.md). The newest RECHECK_POSTS posts of each owner are read again on
# every qzone_posts crawl, for new comments, even when stored unchanged; past them paging
# stops at the first page whose posts are all stored unchanged.
WEBQQ_QZONE_RECHECK_POSTS = 40
# After the rate-limit answer (使用人数过多) the call waits RATE_LIMIT_WAIT seconds, twice as
# long after each next one in a row, and is asked again; after RATE_LIMIT_TRIES answers in a
# row that owner ends rate_limited and the account goes on with the next one. Clients of
# 2020-2026 wait 10-60 s (docs/qzone.md, "Errors").
WEBQQ_QZONE_RATE_LIMIT_WAIT = 30.0
WEBQQ_QZONE_RATE_LIMIT_TRIES = 4
# The most time one account's qzone_posts or qzone_friends run may take, seconds.
WEBQQ_QZONE_TIMEOUT = 3600.0
# A directory: when set, Scrapy's own FilesPipeline downloads every post's pictures into it
# (FILES_STORE); empty = off, the items carry the pictures' URLs only.
WEBQQ_QZONE_PICTURES_DIR = ""

# Log cookie values and tokens at DEBUG. Off: they never reach the log at any level.
WEBQQ_LOG_SECRETS = False

# --- Storage -----------------------------------------------------------------------------
# Item pipelines that keep the Credentials and LoginOutcome items (docs/storage.md).

# JSON file holding one record per account (a new login replaces that account's record) and
# each account's latest outcome; rewritten atomically, mode 0600, its directory created 0700.
# Empty: no JSON file.
WEBQQ_JSON_PATH = ""

# Store credentials and login attempts in a SQL database (SQLAlchemy 2.x).
WEBQQ_DATABASE_ENABLED = True
# SQLAlchemy URL, e.g. "sqlite:////var/lib/webqq/creds.sqlite3" or
# "postgresql+psycopg://user:password@host:5432/dbname". Empty: the SQLite file
# "<user data dir>/webqq_scrapy/credentials.sqlite3" (~/.local/share/... on Linux).
WEBQQ_DATABASE_URL = ""
# The same from a file (its content, the trailing newline dropped), so that the password is
# not on the command line, where every local user sees it (ps, scrapyd's listjobs). The
# secret settings (this one, WEBQQ_REDIS_URL, WEBQQ_QR_WEBHOOK_URL and
# WEBQQ_QR_WEBHOOK_HEADERS) each have a *_FILE twin, and their values may also refer to
# environment variables: "postgresql+psycopg://webqq:${WEBQQ_DB_PASSWORD}@db/webqq".
WEBQQ_DATABASE_URL_FILE = ""

# A write that fails (database down, disk full) is retried this many times, waiting
# BACKOFF seconds before the first retry and twice as long before each next one; records
# still not stored are retried with the next write and once more when the spider closes.
WEBQQ_STORE_RETRY_TIMES = 4
WEBQQ_STORE_RETRY_BACKOFF = 0.5

# Group commit: a storage pipeline writes the records of the items that arrive within
# GROUP_DELAY seconds of the first (or GROUP_SIZE records, whichever comes first) in one
# transaction, one fsync, instead of one each; every item still leaves the pipeline only
# once its record is written. 0 = write each item's record at once (docs/performance.md).
WEBQQ_STORE_GROUP_DELAY = 0.05
WEBQQ_STORE_GROUP_SIZE = 100

ITEM_PIPELINES = {
    "webqq_scrapy.pipelines.CredentialsValidationPipeline": 100,
    "webqq_scrapy.pipelines.JsonFilePipeline": 300,
    "webqq_scrapy.pipelines.DatabasePipeline": 400,
}

# --- Scrapy ------------------------------------------------------------------------------

# Several accounts share URLs (every poll of every account is the same URL shape), and the
# fingerprint ignores meta["cookiejar"]: the dupefilter would drop polls and other
# accounts' steps (docs/scrapy-notes.md §1.5).
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"

# Polls sleep in callbacks, not in downloader slots, so every in-flight request is a real
# one: no global limit (0, Scrapy >= 2.18), and per host enough for thousands of accounts
# each with one request in flight (0 here would mean "no request at all").
CONCURRENT_REQUESTS = 0
CONCURRENT_REQUESTS_PER_DOMAIN = 5000
DOWNLOAD_DELAY = 0
ROBOTSTXT_OBEY = False
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/62.0.3202.94 Safari/537.36"
)
COOKIES_ENABLED = True
COOKIES_DEBUG = False  # would print every session cookie

# A credentials job must not offer a remote shell.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# Scrapy starts CONCURRENT_ITEMS tasks for the output of every callback, and they stay alive
# while a poll callback sleeps: with the default 100, that was 29 % of the CPU and most of
# the memory per account (docs/performance.md). One callback's output is one request or
# two items, in order.
CONCURRENT_ITEMS = 1

# Middlewares this flow does not need, off for ~20 % less CPU per request (every request
# sets its own Referer; nothing is crawled by depth). No redirect is ever followed:
# check_sig's 302 is read where it lands (docs/protocol.md §3.3), and a 301 from an http:// API
# URL (s.web2.qq.com since 2018-12-04) turned POSTs into GETs for the clients that followed
# it (§1.6), so a redirect is an answer to record, not to follow.
# Scrapy's cookie middleware would download the Public Suffix List on a first run (a dozen
# tracebacks without network); this one uses the copy inside tldextract.
DOWNLOADER_MIDDLEWARES = {
    "webqq_scrapy.middlewares.TargetRoutingMiddleware": 740,
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "webqq_scrapy.middlewares.OfflineCookiesMiddleware": 700,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
}
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
# Scrapy's stats, without 2.19's attribute-access shim (a few % of a crawl's CPU;
# webqq_scrapy/stats.py).
STATS_CLASS = "webqq_scrapy.stats.PlainStatsCollector"
# Secrets never reach the log (unless WEBQQ_LOG_SECRETS): items, URLs and cookie lines
# are redacted by the formatter and by a filter on the log handlers.
LOG_FORMATTER = "webqq_scrapy.redaction.RedactingLogFormatter"
EXTENSIONS = {
    "webqq_scrapy.redaction.SecretRedaction": 0,
    # Under the asyncio reactor, Twisted would keep every cancelled download/connection
    # timer for minutes (about 14 per login); see webqq_scrapy/timers.py.
    "webqq_scrapy.timers.TimerHeapPurge": 10,
    # Freeze start-up's objects and raise the collector's threshold (webqq_scrapy/gctuning.py).
    "webqq_scrapy.gctuning.GCTuning": 20,
}

# Python's cyclic GC, handled once for the crawl (webqq_scrapy/gctuning.py): gc.freeze() at
# spider open and the youngest generation's threshold raised to WEBQQ_GC_THRESHOLD container
# allocations (0 = Python's 700). Off: WEBQQ_GC_TUNING=false.
WEBQQ_GC_TUNING = True
WEBQQ_GC_THRESHOLD = 50_000

# Account names travel as the proxy user name to the simulator; allow any Unicode name.
HTTPPROXY_AUTH_ENCODING = "utf-8"

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
# Feeds to local files (scrapy crawl qrlogin -O credentials.json, scrapyd's items) hold
# every token and cookie: created 0600, their new directories 0700 (webqq_scrapy/private.py).
FEED_STORAGES = {
    "": "webqq_scrapy.private.PrivateFileFeedStorage",
    "file": "webqq_scrapy.private.PrivateFileFeedStorage",
}
# Feeds of credentials (-O creds.csv): nested fields (cookies) as JSON text in CSV, not a
# Python repr (README, "Feeds").
FEED_EXPORTERS = {"csv": "webqq_scrapy.feeds.CsvItemExporter"}
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# Scrapy's HTTP handler, plus: a stop cancels the downloads of the stopping accounts, so a
# server that never answers does not hold a Ctrl-C for DOWNLOAD_TIMEOUT (docs/spiders.md),
# and a poll2 answer goes to the messages spider's journal the moment it is read
# (docs/data-spiders.md, "A kill loses no message").
DOWNLOAD_HANDLERS = {
    "http": "webqq_scrapy.download.StoppableDownloadHandler",
    "https": "webqq_scrapy.download.StoppableDownloadHandler",
}

# --- QR delivery -------------------------------------------------------------------------
# How the QR reaches a person nobody sees at a terminal, e.g. under scrapyd
# (docs/qr-delivery.md). The PNG file (WEBQQ_QR_DIR) and the terminal (WEBQQ_QR_TERMINAL)
# are set above.

# Serve a web page showing the current QR and the state of every account, at a secret URL
# ("http://HOST:PORT/<random token>/") logged at INFO; it stops WEBQQ_QR_WEB_GRACE seconds
# after the crawl ends.
WEBQQ_QR_WEB_ENABLED = False
# Address the page listens on: loopback by default. "0.0.0.0" makes it reachable from the
# network, over plain HTTP, protected only by the token in its URL.
WEBQQ_QR_WEB_HOST = "127.0.0.1"
# TCP port of the page; 0 picks a free port (see the logged URL).
WEBQQ_QR_WEB_PORT = 0
# Seconds the page keeps serving the final states after the crawl ends (when someone has
# opened it), so an open browser shows each account's outcome instead of a dead QR. 0: stop
# at once.
WEBQQ_QR_WEB_GRACE = 60.0

# POST a JSON event (account, state, generation, the PNG as base64 with each new QR,
# outcome, sent_at) to this URL on every new QR and state change. Empty: no webhook.
WEBQQ_QR_WEBHOOK_URL = ""
# A file holding the webhook URL (its token stays off the command line; ${VAR} works too).
WEBQQ_QR_WEBHOOK_URL_FILE = ""
# A failed delivery (connection error, timeout, HTTP 5xx/408/429) is retried this many
# times, BACKOFF seconds after the first failure and twice as long after each next one;
# failures are logged and never stop the crawl.
WEBQQ_QR_WEBHOOK_RETRIES = 3
WEBQQ_QR_WEBHOOK_BACKOFF = 1.0
# Seconds one delivery attempt may take.
WEBQQ_QR_WEBHOOK_TIMEOUT = 10.0
# Extra request headers, e.g. {"Authorization": "Bearer …"} (values are never logged).
WEBQQ_QR_WEBHOOK_HEADERS: dict[str, str] = {}
# A file holding those headers as a JSON object; values may also be "Bearer ${WEBHOOK_TOKEN}".
WEBQQ_QR_WEBHOOK_HEADERS_FILE = ""

# Both extensions switch themselves off (NotConfigured) unless configured above.
EXTENSIONS.update(
    {
        "webqq_scrapy.qr.page.QRWebPage": 500,
        "webqq_scrapy.qr.webhook.QRWebhook": 510,
    }
)

# --- Scale-out ---------------------------------------------------------------------------
# The qrlogin_redis spider (docs/performance.md, "Several processes and nodes"): several
# crawl processes, on one machine or many, take account names from one Redis list. Each
# account's whole login stays in the process that took it (its requests and cookie jar are
# never shared); a Redis lease keeps two processes from logging the same account in at once.
# The plain qrlogin spider ignores these settings.

# Redis server holding the list of accounts and the leases.
WEBQQ_REDIS_URL = "redis://127.0.0.1:6379/0"
# A file holding the Redis URL, when it carries a password (${VAR} works too).
WEBQQ_REDIS_URL_FILE = ""
# The list the accounts are taken from (push names with RPUSH; one name per entry). It is
# a reliable queue: a process moves each name it takes (LMOVE, Redis >= 6.2) to its own list
# "<KEY>:processing:<process id>" and removes it only once the account's outcome is stored;
# "<KEY>:workers" and "<KEY>:alive:<process id>" say which processes are alive.
WEBQQ_REDIS_KEY = "webqq:accounts"
# Seconds a process stays "alive" without renewing its key (it renews it every third of
# that). When a process is killed, the next process to notice (after at most this long)
# moves the accounts it had taken back to the head of the list, releasing their leases, and
# they are logged in by the survivors. Longer than any stall of a process.
WEBQQ_REDIS_HEARTBEAT = 15.0
# Accounts taken from the list at a time.
WEBQQ_REDIS_BATCH_SIZE = 50
# At most this many accounts in progress in one process; more stay in the list for other
# processes. The same as qrlogin's WEBQQ_MAX_ACCOUNTS_IN_FLIGHT: a process keeps the memory
# of its busiest moment: after 10,000 accounts in waves, +52 % over its RSS at start with
# 1,000 in flight, +21 % with 200 (docs/performance.md, "Memory"); more processes for more.
WEBQQ_REDIS_MAX_IN_FLIGHT = 200
# Close the spider after the list was empty and no account was in progress for this many
# seconds; 0 keeps it waiting for accounts until it is stopped.
WEBQQ_REDIS_IDLE_CLOSE = 30.0
# Lease of an account: the key PREFIX + account name, set with NX and an expiry of
# WEBQQ_LOGIN_TIMEOUT + MARGIN seconds. A failed login deletes its lease (the account may
# be pushed again at once); a successful one keeps it until it expires, so a duplicate entry
# of the list cannot log the account in a second time and push its fresh session offline.
WEBQQ_REDIS_LEASE_PREFIX = "webqq:lease:"
WEBQQ_REDIS_LEASE_MARGIN = 60.0
