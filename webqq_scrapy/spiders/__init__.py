"""The spiders of webqq_scrapy: qrlogin."""
