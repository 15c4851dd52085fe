"""An OAuth connection's account: a token (imported or signed in) and the account id read with it.

Shared by `connection add`, `edit`, `login` and `import-rclone` (engine.manage), so each of them ends the same
way: the account id as the plain option `account_id`, the token in the token store, nothing in secrets.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.auth.oauth import OAuthSpec
from engine.auth.tokens import Token, TokenError
from engine.errors import UsageError
from engine.names import shown
from engine.providers.base import InvalidOption, Provider, ProviderError
from engine.providers.oauth import OAuthProvider

# A sign-in through the terminal (engine.auth.signin.sign_in bound to a console); None where there is none.
SignIn = Callable[[OAuthSpec], Token]


def is_oauth(cls: type[Provider]) -> bool:
    return issubclass(cls, OAuthProvider)


def how_to_sign_in(name: str) -> str:
    return (
        f"connection '{name}' needs a sign-in: run 'skysync connection login {name}' from a terminal, or give "
        "the token with --option token=- (the JSON that 'rclone authorize' prints, on standard input)"
    )


def token_from_option(text: str) -> Token:
    try:
        return Token.from_json(text)
    except TokenError as exc:
        raise UsageError(f"option 'token' is not a token: {exc}") from None


def spec_for(cls: type[Provider], options: Mapping[str, str]) -> OAuthSpec:
    assert issubclass(cls, OAuthProvider)
    try:
        return cls.oauth_spec(options)
    except InvalidOption as exc:
        raise UsageError(str(exc)) from None


def sign_in(cls: type[Provider], name: str, options: Mapping[str, str], signin: SignIn | None) -> Token:
    if signin is None:
        raise UsageError(how_to_sign_in(name))
    try:
        return signin(spec_for(cls, options))
    except ProviderError as exc:
        raise UsageError(f"the sign-in of connection '{name}' failed: {shown(str(exc))}") from None


def account_of(cls: type[Provider], name: str, options: Mapping[str, str], token: Token) -> tuple[Token, str]:
    """(the token to save, the account id) — the token as refreshed while reading the account, if it was."""
    assert issubclass(cls, OAuthProvider)
    provider = cls({**options, "token": token.to_json()})
    try:
        account = provider.account_id()
    except ProviderError as exc:
        raise UsageError(f"connection '{name}': cannot read the signed-in account: {shown(str(exc))}") from None
    finally:
        provider.close()
    if not account:
        raise UsageError(f"connection '{name}': the service did not say which account signed in")
    return provider.unsaved_token() or token, account
