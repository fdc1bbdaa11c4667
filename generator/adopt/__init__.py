"""`generator adopt`: take over a LiteLLM that Thinkube's Ansible playbooks deployed, losing nothing.

In parts, each owning one step: ``originals`` reads the playbooks' objects (a saved dump, or a live cluster,
read-only) into ``Originals``; ``mapping`` turns them into site settings, the secret values and what could not
be carried (pure); ``takeover`` lists what the tree replaces but does not own, with the command that removes it
(pure); ``run`` checks the result against the site model, then writes the site file and the sops file.
"""
