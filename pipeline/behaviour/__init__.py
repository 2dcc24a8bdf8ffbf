"""Behavioural detectors, Beam-free and sentiment-blind by construction.

They see only ``(review_id, author_id, product_id, time)`` plus optional platform metadata
(hashed client prefix, device id): never the rating, never the text.

* ``coordinated_group``: sets of authors who review the same several products within a short
  window (:func:`pipeline.behaviour.detect.k_core_groups`).
* ``author_velocity``: an author's reviews per hour and per day, against the population.
* ``product_burst``: a product's review volume against its own baseline (an alert, never a hold).
* ``shared_client``: many accounts from one device or client prefix (optional metadata).
"""
