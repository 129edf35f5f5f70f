"""Roles and the permissions each endpoint requires.

Every design endpoint declares one permission; this table says which roles hold it. An
operator may hold several roles. The test suite walks every endpoint with every role.

    administrator     everything
    offer_manager     categories, offers, segments, treatment rules; submits offers
    approver          approves or rejects submitted offers
    deployer          plans, deploys, rolls back
    delivery_manager  reads the catalog and deployments (uses live offers in campaigns);
                      runs simulations, as offer managers do
    viewer            reads the catalog and deployments
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    READ = "catalog:read"  # read catalog objects, offers, deployments, plans
    SETUP = "catalog:setup"  # audiences, channels, zones, placements, policies, settings
    AUTHOR = "catalog:author"  # categories, offers, segments, treatment rules; submit
    APPROVE = "offers:approve"
    DEPLOY = "deployments:deploy"  # deploy, roll back
    FORCE = "deployments:force"  # deploy to production without the same content on staging
    IMPORT = "catalog:import"  # replace the catalog from YAML
    OPERATORS = "operators:admin"
    ENVIRONMENTS = "environments:admin"
    API_KEYS = "api-keys:admin"
    AUDIT = "audit:read"
    SIMULATE = "simulations:run"  # run a deployment over stored profiles, record nothing
    SELF = "self"  # any logged-in operator: who am I, log out, change my password


ROLES = ("administrator", "offer_manager", "approver", "deployer", "delivery_manager", "viewer")

PERMISSIONS: dict[Permission, frozenset[str]] = {
    Permission.READ: frozenset(ROLES),
    Permission.SELF: frozenset(ROLES),
    Permission.SETUP: frozenset({"administrator"}),
    Permission.AUTHOR: frozenset({"administrator", "offer_manager"}),
    Permission.APPROVE: frozenset({"administrator", "approver"}),
    Permission.DEPLOY: frozenset({"administrator", "deployer"}),
    Permission.FORCE: frozenset({"administrator"}),
    Permission.IMPORT: frozenset({"administrator"}),
    Permission.OPERATORS: frozenset({"administrator"}),
    Permission.ENVIRONMENTS: frozenset({"administrator"}),
    Permission.API_KEYS: frozenset({"administrator"}),
    Permission.AUDIT: frozenset({"administrator"}),
    Permission.SIMULATE: frozenset({"administrator", "offer_manager", "delivery_manager"}),
}


def allowed(roles: set[str] | frozenset[str], permission: Permission) -> bool:
    return not PERMISSIONS[permission].isdisjoint(roles)
