"""The peers' side of `cargo xtask bench --with-peers`: one job per process, as a user's
program would do it with the SDK (its import included).

usage: peers.py flytekit|flyte2 login|store|cached ENDPOINT TOKEN_URL

- login:  one client-credentials token request with the SDK's token client (discovery is not
          timed for the peers: flytekit discovers over gRPC, which the local provider does not
          serve), the token printed;
- store:  a login, then the token saved in the SDK's keyring store (not timed);
- cached: the token read back from the SDK's keyring store and printed.

The client id and secret come from FLYTE_AUTH_BENCH_CLIENT_ID / _SECRET; FLYTE_AUTH_BENCH_CA,
when set, is the PEM file of the CA to trust (`bench --latency MS --tls`).
"""

import os
import sys


def flytekit(job, endpoint, token_url):
    if job == "cached":
        from flytekit.clients.auth.keyring import KeyringStore

        return KeyringStore.retrieve(endpoint).access_token
    from flytekit.clients.auth.token_client import get_basic_authorization_header, get_token

    header = get_basic_authorization_header(
        os.environ["FLYTE_AUTH_BENCH_CLIENT_ID"], os.environ["FLYTE_AUTH_BENCH_CLIENT_SECRET"]
    )
    token, _, expires_in = get_token(
        token_url, scopes=["all"], authorization_header=header, verify=os.environ.get("FLYTE_AUTH_BENCH_CA")
    )
    if job == "store":
        from flytekit.clients.auth.keyring import Credentials, KeyringStore

        KeyringStore.store(
            Credentials(access_token=token, refresh_token="na", for_endpoint=endpoint, expires_in=expires_in)
        )
    return token


def flyte2(job, endpoint, token_url):
    if job == "cached":
        from flyte.remote._client.auth._keyring import KeyringStore

        return KeyringStore.retrieve(endpoint).access_token
    import asyncio

    import httpx
    from flyte.remote._client.auth._token_client import get_basic_authorization_header, get_token

    header = get_basic_authorization_header(
        os.environ["FLYTE_AUTH_BENCH_CLIENT_ID"], os.environ["FLYTE_AUTH_BENCH_CLIENT_SECRET"]
    )

    ca = os.environ.get("FLYTE_AUTH_BENCH_CA")

    async def login():
        import ssl

        verify = ssl.create_default_context(cafile=ca) if ca else True
        async with httpx.AsyncClient(verify=verify) as session:
            return await get_token(token_url, session, scopes=["all"], authorization_header=header)

    token, refresh, expires_in = asyncio.run(login())
    if job == "store":
        from flyte.remote._client.auth._keyring import Credentials, KeyringStore

        KeyringStore.store(
            Credentials(access_token=token, refresh_token=refresh or "na", for_endpoint=endpoint, expires_in=expires_in)
        )
    return token


if __name__ == "__main__":
    sdk, job, endpoint, token_url = sys.argv[1:5]
    print({"flytekit": flytekit, "flyte2": flyte2}[sdk](job, endpoint, token_url))
