"""Genesys Cloud regions: the API host of each; the login host swaps ``api.`` for ``login.``."""

from __future__ import annotations

REGION_API_HOSTS: dict[str, str] = {
    "us_east_1": "api.mypurecloud.com",
    "us_east_2": "api.use2.us-gov-pure.cloud",
    "us_west_2": "api.usw2.pure.cloud",
    "ca_central_1": "api.cac1.pure.cloud",
    "sa_east_1": "api.sae1.pure.cloud",
    "mx_central_1": "api.mxc1.pure.cloud",
    "eu_west_1": "api.mypurecloud.ie",
    "eu_west_2": "api.euw2.pure.cloud",
    "eu_central_1": "api.mypurecloud.de",
    "eu_central_2": "api.euc2.pure.cloud",
    "me_central_1": "api.mec1.pure.cloud",
    "ap_south_1": "api.aps1.pure.cloud",
    "ap_southeast_1": "api.apse1.pure.cloud",
    "ap_southeast_2": "api.mypurecloud.com.au",
    "ap_northeast_1": "api.mypurecloud.jp",
    "ap_northeast_2": "api.apne2.pure.cloud",
    "ap_northeast_3": "api.apne3.pure.cloud",
    "eusc_de_east_1": "api.edee1.eusc-pure.cloud",  # EU sovereign cloud
}


def region_urls(region: str) -> tuple[str, str]:
    """Return ``(api_url, login_url)`` for a region name; KeyError when unknown."""
    api_host = REGION_API_HOSTS[region]
    login_host = "login." + api_host.removeprefix("api.")
    return f"https://{api_host}/api/v2", f"https://{login_host}"
