from aiohttp import web

from auth_service.api.clients import ClientAddresses
from auth_service.domain.accounts import Accounts
from auth_service.domain.api_keys import ApiKeys
from auth_service.domain.projects import Projects
from auth_service.signing import SigningKeys
from auth_service.workers.deletions import DeletionAnnouncer

ACCOUNTS = web.AppKey("accounts", Accounts)
PROJECTS = web.AppKey("projects", Projects)
API_KEYS = web.AppKey("api_keys", ApiKeys)
SIGNING_KEYS = web.AppKey("signing_keys", SigningKeys)
CLIENT_ADDRESSES = web.AppKey("client_addresses", ClientAddresses)
DELETION_ANNOUNCER = web.AppKey("deletion_announcer", DeletionAnnouncer)
