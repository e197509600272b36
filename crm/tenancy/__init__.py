"""Tenancy: how a request, an admin page or an API call is held to the companies its caller may act for.

`crm.tenancy.admin` scopes admin pages (`TenantScopedAdmin`, `TenantScopedInline`); `crm.tenancy.api`
authenticates API keys and decides which company an API request acts for (`request_company`).
They live with `Company` and `Membership`, not in the `shokti` kernel, which imports no app.
"""
