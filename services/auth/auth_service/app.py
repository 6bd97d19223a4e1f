from collections.abc import AsyncIterator, Callable

from aiohttp import web

from auth_service.api import accounts, api_keys, projects, users
from auth_service.api.clients import ClientAddresses
from auth_service.api.errors import ERROR_MAP
from auth_service.appkeys import (
    ACCOUNTS,
    API_KEYS,
    CLIENT_ADDRESSES,
    DELETION_ANNOUNCER,
    PROJECTS,
    SIGNING_KEYS,
)
from auth_service.domain.accounts import Accounts, ResetSender, TokenPolicy
from auth_service.domain.api_keys import ApiKeys
from auth_service.domain.passwords import PasswordHasher
from auth_service.domain.projects import Projects
from auth_service.domain.throttle import CredentialThrottle, KeyFailures, ThrottleLimits
from auth_service.resets import FileResetSender, LogResetSender
from auth_service.settings import AuthSettings
from auth_service.signing import SigningKeys
from auth_service.workers.deletions import DeletionAnnouncer
from backend_common.app import create_base_app
from backend_common.auth import API_KEY_VERIFIER, TOKEN_VERIFIER, TokenVerifier, auth_middleware
from backend_common.clock import Clock, utc_now
from backend_common.idempotency import purge_expired_ctx
from backend_common.keys import DATABASE


def create_app(
    settings: AuthSettings, *, reset_sender: ResetSender | None = None, clock: Clock = utc_now
) -> web.Application:
    app = create_base_app(
        settings,
        error_map=ERROR_MAP,
        extra_middlewares=(auth_middleware(accounts.PUBLIC_ROUTES),),
    )
    app[CLIENT_ADDRESSES] = ClientAddresses(settings.trusted_proxies)
    if reset_sender is None:
        mail_dir = settings.reset_mail_dir
        reset_sender = FileResetSender(mail_dir) if mail_dir else LogResetSender()
    app.cleanup_ctx.append(_domain_ctx(settings, reset_sender, clock))
    app.cleanup_ctx.append(purge_expired_ctx)
    app.router.add_routes(accounts.routes)
    app.router.add_routes(projects.routes)
    app.router.add_routes(users.routes)
    app.router.add_routes(api_keys.routes)
    return app


def _domain_ctx(settings: AuthSettings, reset_sender: ResetSender, clock: Clock) -> Callable:
    async def domain(app: web.Application) -> AsyncIterator[None]:
        keys = SigningKeys.load(settings.jwt_keys_dir, settings.jwt_active_kid)
        hasher = PasswordHasher(
            rounds=settings.bcrypt_rounds,
            threads=settings.bcrypt_threads,
            hash_threads=settings.bcrypt_hash_threads,
            queue=settings.bcrypt_queue,
        )

        async def own_jwks() -> dict:
            return keys.jwks()

        app[SIGNING_KEYS] = keys
        app[TOKEN_VERIFIER] = TokenVerifier(
            fetch_jwks=own_jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        app[ACCOUNTS] = Accounts(
            app[DATABASE],
            hasher=hasher,
            keys=keys,
            policy=TokenPolicy(
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                access_ttl=settings.access_token_ttl,
                refresh_ttl=settings.refresh_token_ttl,
                reset_ttl=settings.password_reset_ttl,
            ),
            reset_sender=reset_sender,
            registration_open=settings.registration_open,
            throttle=CredentialThrottle(
                ThrottleLimits(
                    address_rate=settings.credential_rate_per_address,
                    address_burst=settings.credential_burst_per_address,
                    login_rate=settings.login_rate_per_username,
                    login_burst=settings.login_burst_per_username,
                    known_address_ttl=settings.known_address_ttl,
                    reset_rate=settings.reset_rate_per_email,
                    reset_burst=settings.reset_burst_per_email,
                )
            ),
        )
        announcer = DeletionAnnouncer(app[DATABASE], keys, settings, clock=clock)
        app[DELETION_ANNOUNCER] = announcer
        app[PROJECTS] = Projects(
            app[DATABASE],
            max_owned=settings.max_owned_projects,
            clock=clock,
            announce=announcer.wake,
        )
        app[API_KEYS] = ApiKeys(
            app[DATABASE],
            max_per_user=settings.max_api_keys_per_user,
            touch_interval=settings.api_key_last_used_interval,
            failures=KeyFailures(
                rate=settings.api_key_failure_rate, burst=settings.api_key_failure_burst
            ),
        )
        app[API_KEY_VERIFIER] = api_keys.LocalApiKeys(app[API_KEYS], app[CLIENT_ADDRESSES])
        if settings.project_deletion_delivery_enabled:
            await announcer.start()
        yield
        await announcer.stop()
        await app[ACCOUNTS].drain()
        hasher.close()

    return domain
