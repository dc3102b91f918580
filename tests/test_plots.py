"""The book's figures fit its text column (the browser layout test checks the built pages)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from siamese_lib import plots  # noqa: E402


@pytest.mark.parametrize("ncols, scale", [(13, 0.9), (10, 1.2), (21, 1.0)])
def test_an_image_grid_is_never_wider_than_the_column_shows_legibly(ncols, scale):
    images = torch.zeros(ncols, 1, 28, 28, dtype=torch.uint8)
    fig = plots.show_images(images, [str(i) for i in range(ncols)], ncols=ncols, scale=scale)
    width, height = fig.get_size_inches()
    plt.close(fig)
    assert width <= plots.MAX_FIGURE_WIDTH + 1e-9
    assert height == pytest.approx((scale + 0.2) * width / (scale * ncols))  # cells keep their shape


def test_a_narrow_grid_keeps_its_cells():
    fig = plots.show_images(torch.zeros(4, 1, 28, 28), ncols=4, scale=1.2)
    width, _ = fig.get_size_inches()
    plt.close(fig)
    assert width == pytest.approx(4 * 1.2)


def test_an_episode_of_twenty_fits_the_column():
    fig = plots.show_episode(torch.zeros(20, 1, 28, 28), torch.zeros(1, 28, 28),
                             torch.arange(20.0), answer=3, ncols=21)
    width, _ = fig.get_size_inches()
    plt.close(fig)
    assert width <= plots.MAX_FIGURE_WIDTH + 1e-9
