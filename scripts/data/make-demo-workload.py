#!/usr/bin/env python3
"""Writes Sources/cachekit/Resources/demo-workload.jsonl: the demo's workload of support questions.

Each intent has an original question and paraphrases written for this project. The workload asks every original
once, then a seeded shuffle of repeats (exact hits) and paraphrases (semantic candidates). Every line is
{"request": <chat request>, "label": "<intent id>"}: the simulated upstream answers with the label, so a semantic
hit is correct when the served label equals the line's label. Run it again after editing INTENTS.
"""
import json
import pathlib
import random

SYSTEM = "You are the support assistant of Acme Cloud. Answer in two sentences."
INTENTS = {
    "reset-password": ["How do I reset my password?", "How can I reset my account password?", "I forgot my password, how do I reset it?"],
    "change-email": ["How do I change the email address on my account?", "How can I update my account email address?"],
    "delete-account": ["How do I delete my account?", "How can I permanently delete my Acme account?"],
    "enable-2fa": ["How do I turn on two-factor authentication?", "How can I enable two-factor authentication on my account?"],
    "billing-cycle": ["When is my monthly invoice issued?", "On which day is the monthly invoice issued?"],
    "refund-policy": ["What is your refund policy?", "Can you explain your refund policy?"],
    "payment-methods": ["Which payment methods do you accept?", "What payment methods can I use?"],
    "upgrade-plan": ["How do I upgrade my plan?", "How can I upgrade to a bigger plan?"],
    "cancel-subscription": ["How do I cancel my subscription?", "How can I cancel my Acme subscription?"],
    "api-rate-limit": ["What is the API rate limit?", "What rate limit applies to the API?"],
    "api-key-rotate": ["How do I rotate my API key?", "How can I rotate an API key safely?"],
    "regions": ["Which regions are your servers in?", "In which regions are your servers located?"],
    "uptime-sla": ["What uptime does your SLA guarantee?", "What is the uptime guarantee in the SLA?"],
    "backup-frequency": ["How often are my databases backed up?", "How often do you back up my databases?"],
    "restore-backup": ["How do I restore a database from a backup?", "How can I restore my database from a backup?"],
    "custom-domain": ["How do I add a custom domain?", "How can I add my own custom domain?"],
    "ssl-certificate": ["Do you provide free SSL certificates?", "Are SSL certificates free on Acme Cloud?"],
    "invite-teammate": ["How do I invite a teammate to my project?", "How can I invite a teammate to a project?"],
    "remove-teammate": ["How do I remove a teammate from my project?", "How can I remove a teammate from the project?"],
    "export-data": ["How do I export all my data?", "How can I export my data from Acme?"],
    "gdpr": ["Is Acme Cloud GDPR compliant?", "Does Acme Cloud comply with GDPR?"],
    "support-hours": ["What are your support hours?", "When is your support team available?"],
    "status-page": ["Where can I see the service status page?", "Where is the status page for the service?"],
    "scale-instances": ["How do I scale my app to more instances?", "How can I scale my app to more instances automatically?"],
    "logs": ["Where can I see my application logs?", "Where do I find the logs of my application?"],
    "env-vars": ["How do I set environment variables for my app?", "How can I set environment variables in my app?"],
    "free-tier": ["What does the free tier include?", "What is included in the free tier?"],
    "student-discount": ["Do you offer a student discount?", "Is there a discount for students?"],
    "invoice-vat": ["How do I add my VAT number to invoices?", "How can I put my VAT number on my invoices?"],
    "sso": ["Do you support single sign-on with SAML?", "Is single sign-on with SAML supported?"],
}

def request(text: str) -> dict:
    return {"model": "gpt-4o-mini", "temperature": 0, "max_tokens": 120,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]}

def main() -> None:
    rng = random.Random(2026)
    lines = [(questions[0], label) for label, questions in INTENTS.items()]
    later = []
    for label, questions in INTENTS.items():
        later.extend((q, label) for q in questions[1:])
        later.extend([(questions[0], label)] * rng.choice([1, 2, 3]))
    rng.shuffle(later)
    lines.extend(later)
    out = pathlib.Path(__file__).resolve().parents[2] / "Sources/cachekit/Resources/demo-workload.jsonl"
    with out.open("w") as f:
        for text, label in lines:
            f.write(json.dumps({"request": request(text), "label": label}, sort_keys=True) + "\n")
    print(f"wrote {len(lines)} lines to {out}")

if __name__ == "__main__":
    main()
