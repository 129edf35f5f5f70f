"""Small catalogs whose policies tests can exhaust quickly."""

from __future__ import annotations

SHOP = """
name: shop
audiences:
  - name: visitor
    id_field: visitor_id
    fields: {visitor_id: string, tier: string}
channels:
  - name: web
    events: {presented: [view], accepted: [click], rejected: [close]}
placements:
  - name: banner
    channel: web
    max_offers: 1
    fallback_offers: [HELLO]
    default_content: {text: "Welcome"}
  - name: sidebar
    channel: web
    max_offers: 2
categories:
  - name: deals
  - name: info
offers:
  - {code: BIG, name: Big deal, category: deals, value: 30, weights: [{value: 3}],
     placements: [banner, sidebar], content: {text: "Big {{ profile.tier or 'deal' }}"}}
  - {code: RARE, name: Rare deal, category: deals, value: 20, weights: [{value: 2}],
     placements: [banner, sidebar], content: {text: "Rare"}}
  - {code: HELLO, name: Hello, category: info, placements: [banner], content: {text: "Hello"}}
policies:
  - {name: twice_a_week, kind: capping, categories: [deals], per: offer, limit: 2, window: 7d}
  - {name: rare_stock, kind: inventory, offers: [RARE], limit: 5, per: day}
  - {name: no_after_close, kind: suppression, after: rejected}
"""
