"""The simulated shop's catalog: products with categories, prices, stock and customization."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

CURRENCY = "GBP"

# category -> (typical price in GBP, nouns, adjectives); prices spread log-normally around it.
CATEGORIES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "home_decor": (6.5, ("cushion", "frame", "clock", "vase", "sign"), ("vintage", "heart")),
    "kitchen": (4.0, ("mug", "tea towel", "cake tin", "jar", "bowl"), ("retro", "spotty")),
    "stationery": (1.8, ("notebook", "card", "pencil set", "wrap", "tape"), ("floral", "paper")),
    "toys": (3.5, ("doll", "puzzle", "skittles", "spinning top", "kit"), ("wooden", "tin")),
    "garden": (8.0, ("lantern", "planter", "bird feeder", "chime", "stake"), ("zinc", "rustic")),
    "lighting": (5.5, ("t-light holder", "light chain", "lamp", "candle"), ("glass", "star")),
    "bags": (2.1, ("jumbo bag", "lunch bag", "shopper", "tote"), ("red retrospot", "strawberry")),
    "party": (1.2, ("bunting", "napkins", "cake cases", "balloons"), ("party", "pink")),
}
CUSTOMIZATIONS = ("gift_wrap", "engraving", "monogram", "colour_choice", "personal_message")
MAX_PRODUCTS = 99_999  # product ids have five digits; dirt invents six-digit unknown ones


@dataclass(slots=True)
class Product:
    product_id: str
    description: str
    category: str
    unit_price: float
    stock: int
    customization_options: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return self.stock > 0

    def upsert_fields(self) -> dict:
        """The fields of a product_upserted event carrying this product's full state."""
        return {
            "product_id": self.product_id,
            "description": self.description,
            "category": self.category,
            "unit_price": self.unit_price,
            "currency": CURRENCY,
            "stock": self.stock,
            "customization_options": list(self.customization_options),
        }


@dataclass
class Catalog:
    products: list[Product]
    by_category: dict[str, list[Product]]

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.by_category)


def build_catalog(rng: random.Random, n_products: int) -> Catalog:
    if not 1 <= n_products <= MAX_PRODUCTS:
        raise ValueError(f"n_products must be between 1 and {MAX_PRODUCTS}")
    names = list(CATEGORIES)
    products = []
    for index in range(n_products):
        category = names[index % len(names)]
        typical_price, nouns, adjectives = CATEGORIES[category]
        description = f"{rng.choice(adjectives)} {rng.choice(nouns)}".upper()
        products.append(
            Product(
                product_id=f"P{index + 1:05d}",
                description=description,
                category=category,
                unit_price=round_price(typical_price * math.exp(rng.gauss(0, 0.5))),
                stock=rng.randint(0, 60) if rng.random() < 0.05 else rng.randint(20, 400),
                customization_options=customization_sample(rng),
            )
        )
    by_category = {name: [p for p in products if p.category == name] for name in names}
    return Catalog(products, {name: ps for name, ps in by_category.items() if ps})


def customization_sample(rng: random.Random) -> list[str]:
    """Most products offer none; some offer one to three options, in a stable order."""
    if rng.random() < 0.6:
        return []
    chosen = set(rng.sample(CUSTOMIZATIONS, rng.randint(1, 3)))
    return [option for option in CUSTOMIZATIONS if option in chosen]


def round_price(price: float) -> float:
    return max(0.05, round(price, 2))


def repriced(rng: random.Random, product: Product) -> float:
    """A new price: mostly small moves, sometimes a promotion or its end."""
    factor = rng.choice((0.7, 0.8, 1.25)) if rng.random() < 0.2 else math.exp(rng.gauss(0, 0.08))
    new_price = round_price(product.unit_price * factor)
    return new_price if new_price != product.unit_price else round_price(new_price + 0.05)
